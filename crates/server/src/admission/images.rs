//! Which images an admitted object would run: every container kind of a Pod spec, and image
//! volumes, wherever the object keeps its Pod spec.

use gantry_model::Platform;
use k8s_openapi::api::core::v1::{NodeSelectorRequirement, PodSpec};
use serde_json::Value;

/// Where in the Pod spec an image was named (shown in denials: "container app").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// The reference as written in the spec.
    pub image: String,
    /// `container app`, `initContainer migrate`, `ephemeralContainer debugger`, `volume data`.
    pub place: String,
}

/// Why no images could be read from an object.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// A kind this webhook does not judge (the webhook configuration should not send it).
    #[error("kind {0} carries no pod template Gantry knows")]
    UnsupportedKind(String),
    /// The object has no Pod spec where its kind keeps one.
    #[error("{kind} has no pod spec at {path}")]
    NoPodSpec { kind: String, path: &'static str },
    /// The Pod spec does not match the Kubernetes schema.
    #[error("{kind} pod spec is invalid: {message}")]
    InvalidPodSpec { kind: String, message: String },
}

/// Path of the Pod spec inside an object of `kind`.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController"
        | "PodTemplate" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// What a Pod spec needs pulled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodImages {
    /// Every image use, in spec order, duplicates kept (each is reported where it is).
    pub uses: Vec<ImageUse>,
    /// Names of the Secrets in `imagePullSecrets`.
    pub pull_secrets: Vec<String>,
    /// The platforms the pod can be scheduled on, when its spec says so exactly (a
    /// `kubernetes.io/arch` node selector, or required node affinity whose every term names
    /// architectures with `In`); `None`: any node.
    pub platforms: Option<Vec<Platform>>,
}

/// The images of `object`, whose kind is `kind`, and the pull secrets it names.
pub fn images_of(kind: &str, object: &Value) -> Result<PodImages, ObjectError> {
    let path = pod_spec_path(kind).ok_or_else(|| ObjectError::UnsupportedKind(kind.to_string()))?;
    let mut node = object;
    for key in path {
        node = node.get(key).ok_or_else(|| ObjectError::NoPodSpec {
            kind: kind.to_string(),
            path: match path.len() {
                1 => ".spec",
                3 => ".spec.template.spec",
                _ => ".spec.jobTemplate.spec.template.spec",
            },
        })?;
    }
    let spec: PodSpec =
        serde_json::from_value(node.clone()).map_err(|e| ObjectError::InvalidPodSpec {
            kind: kind.to_string(),
            message: e.to_string(),
        })?;
    Ok(PodImages {
        uses: from_spec(&spec),
        platforms: placement(&spec),
        pull_secrets: spec
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty())
            .collect(),
    })
}

fn from_spec(spec: &PodSpec) -> Vec<ImageUse> {
    let mut uses = Vec::new();
    let mut add = |image: Option<&String>, place: String| {
        if let Some(image) = image.filter(|i| !i.trim().is_empty()) {
            uses.push(ImageUse {
                image: image.trim().to_string(),
                place,
            });
        }
    };
    for c in spec.init_containers.iter().flatten() {
        add(c.image.as_ref(), format!("initContainer {}", c.name));
    }
    for c in &spec.containers {
        add(c.image.as_ref(), format!("container {}", c.name));
    }
    for c in spec.ephemeral_containers.iter().flatten() {
        add(c.image.as_ref(), format!("ephemeralContainer {}", c.name));
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(image) = &v.image {
            add(image.reference.as_ref(), format!("volume {}", v.name));
        }
    }
    uses
}

const ARCH: &str = "kubernetes.io/arch";
const OS: &str = "kubernetes.io/os";

/// The platforms a pod's node selection allows, when it names them exactly. Anything looser
/// (no constraint, `NotIn`, one affinity term without the architecture) is `None`: the pod may
/// land on any node, so every platform counts.
fn placement(spec: &PodSpec) -> Option<Vec<Platform>> {
    let selector = spec.node_selector.as_ref();
    let os = selector
        .and_then(|s| s.get(OS))
        .cloned()
        .unwrap_or_else(|| "linux".to_string());
    let mut archs: Option<Vec<String>> =
        selector.and_then(|s| s.get(ARCH)).map(|a| vec![a.clone()]);
    let terms = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| &r.node_selector_terms);
    if let Some(terms) = terms.filter(|t| !t.is_empty()) {
        // Terms are ORed: the pod may use any of them, so each must pin the architecture.
        let mut union: Vec<String> = Vec::new();
        let mut exact = true;
        for term in terms {
            let ins: Vec<&NodeSelectorRequirement> = term
                .match_expressions
                .iter()
                .flatten()
                .filter(|e| e.key == ARCH && e.operator == "In")
                .collect();
            if ins.is_empty() {
                exact = false;
                break;
            }
            // Several requirements in one term are ANDed: the intersection.
            let mut values: Vec<String> = ins[0].values.clone().unwrap_or_default();
            for e in &ins[1..] {
                let other = e.values.clone().unwrap_or_default();
                values.retain(|v| other.contains(v));
            }
            union.extend(values);
        }
        if exact {
            archs = Some(match archs {
                // A node selector and affinity both apply.
                Some(sel) => union.into_iter().filter(|a| sel.contains(a)).collect(),
                None => union,
            });
        }
    }
    let mut archs = archs?;
    archs.sort();
    archs.dedup();
    Some(
        archs
            .into_iter()
            .filter_map(|arch| format!("{os}/{arch}").parse().ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "initContainers": [{"name": "migrate", "image": "registry.example.com/app/migrate:1"}],
            "containers": [{"name": "app", "image": "nginx"}, {"name": "side", "image": "nginx"}],
            "ephemeralContainers": [{"name": "debugger", "image": "busybox:1.36"}],
            "volumes": [{"name": "models", "image": {"reference": "registry.example.com/models:v3"}}, {"name": "tmp", "emptyDir": {}}],
        })
    }

    #[test]
    fn every_workload_kind_is_read() {
        let cases = [
            ("Pod", json!({"spec": spec()})),
            (
                "Deployment",
                json!({"spec": {"template": {"spec": spec()}}}),
            ),
            (
                "StatefulSet",
                json!({"spec": {"template": {"spec": spec()}}}),
            ),
            ("DaemonSet", json!({"spec": {"template": {"spec": spec()}}})),
            (
                "ReplicaSet",
                json!({"spec": {"template": {"spec": spec()}}}),
            ),
            ("Job", json!({"spec": {"template": {"spec": spec()}}})),
            (
                "ReplicationController",
                json!({"spec": {"template": {"spec": spec()}}}),
            ),
            (
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec()}}}}}),
            ),
        ];
        for (kind, object) in cases {
            let uses = images_of(kind, &object).unwrap().uses;
            let places: Vec<&str> = uses.iter().map(|u| u.place.as_str()).collect();
            assert_eq!(
                places,
                [
                    "initContainer migrate",
                    "container app",
                    "container side",
                    "ephemeralContainer debugger",
                    "volume models"
                ],
                "{kind}"
            );
            assert_eq!(uses[4].image, "registry.example.com/models:v3");
        }
    }

    #[test]
    fn pull_secrets_are_named() {
        let object = json!({"spec": {"containers": [{"name": "a", "image": "x"}], "imagePullSecrets": [{"name": "regcred"}, {"name": ""}]}});
        assert_eq!(images_of("Pod", &object).unwrap().pull_secrets, ["regcred"]);
    }

    #[test]
    fn node_selection_narrows_the_platforms_only_when_exact() {
        let platforms = |spec: Value| {
            images_of("Pod", &json!({"spec": spec}))
                .unwrap()
                .platforms
                .map(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        let c = json!([{"name": "a", "image": "x"}]);
        assert_eq!(platforms(json!({"containers": c})), None);
        assert_eq!(
            platforms(json!({"containers": c, "nodeSelector": {"kubernetes.io/arch": "arm64"}})),
            Some(vec!["linux/arm64".to_string()])
        );
        let affinity = |terms: Value| {
            json!({"containers": c, "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}})
        };
        let arch_in = |values: Value| json!({"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": values}]});
        assert_eq!(
            platforms(affinity(json!([
                arch_in(json!(["amd64"])),
                arch_in(json!(["arm64", "amd64"]))
            ]))),
            Some(vec!["linux/amd64".to_string(), "linux/arm64".to_string()])
        );
        // One term without the architecture: the pod may land anywhere.
        assert_eq!(
            platforms(affinity(
                json!([arch_in(json!(["amd64"])), {"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]}]}])
            )),
            None
        );
        let not_in = json!([{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "NotIn", "values": ["arm64"]}]}]);
        assert_eq!(platforms(affinity(not_in)), None);
    }

    #[test]
    fn missing_or_invalid_specs_are_errors() {
        assert!(matches!(
            images_of("Service", &json!({})),
            Err(ObjectError::UnsupportedKind(_))
        ));
        assert!(matches!(
            images_of("Deployment", &json!({"spec": {}})),
            Err(ObjectError::NoPodSpec { .. })
        ));
        assert!(matches!(
            images_of("Pod", &json!({"spec": {"containers": "nope"}})),
            Err(ObjectError::InvalidPodSpec { .. })
        ));
    }
}
