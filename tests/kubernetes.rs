//! deploy/kubernetes: every overlay builds with kubectl's kustomize, kubectl accepts the
//! output (`apply --dry-run=client` against a loopback stand-in for the API server's discovery
//! endpoints: kubectl maps each kind to a resource before anything else, and no cluster is
//! reachable here), and the rendered objects keep the properties the admission webhook relies
//! on — checked on the parsed YAML, not by grepping text.
//!
//! The stand-in knows only which kinds exist; kubectl validates no schemas against it
//! (`--validate=false`), so field names are checked by the structural assertions here.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_norway::Value;

use crate::util::{gantry, stderr};

/// kubectl, or a clear failure: these tests are the only check of the manifests.
fn kubectl() -> Command {
    let path = std::env::var_os("GANTRY_KUBECTL").unwrap_or_else(|| "kubectl".into());
    Command::new(path)
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// `kubectl kustomize DIR`, asserting success.
fn kustomize(dir: &Path) -> String {
    let out = kubectl()
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl must be installed for the deploy/kubernetes tests");
    assert!(
        out.status.success(),
        "kubectl kustomize {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every YAML document of a multi-document stream.
fn documents(yaml: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The rendered objects of one build.
struct Objects(Vec<Value>);

impl Objects {
    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name)
            .unwrap_or_else(|| panic!("no {kind} {name} in:\n{}", self.names().join("\n")))
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|o| format!("{}/{}", s(&o["kind"]), s(&o["metadata"]["name"])))
            .collect()
    }

    fn deployment(&self) -> &Value {
        self.get("Deployment", "gantry")
    }

    fn container(&self) -> &Value {
        let containers = seq(&self.deployment()["spec"]["template"]["spec"]["containers"]);
        containers
            .iter()
            .find(|c| c["name"] == "gantry")
            .expect("container gantry")
    }

    fn webhook(&self) -> &Value {
        let vwc = self.get("ValidatingWebhookConfiguration", "gantry");
        &seq(&vwc["webhooks"])[0]
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

fn seq(v: &Value) -> &Vec<Value> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
}

fn strings(v: &Value) -> Vec<&str> {
    seq(v).iter().map(s).collect()
}

/// kubectl kustomize, then kubectl apply --dry-run=client on the output; the parsed objects.
fn build_and_apply(dir: &Path) -> Objects {
    let yaml = kustomize(dir);
    let objects = Objects(documents(&yaml));
    let applied = dry_run_apply(&yaml);
    for name in objects.names() {
        let (kind, name) = name.split_once('/').unwrap();
        let expected = format!("/{name} created (dry run)");
        assert!(
            applied
                .lines()
                .any(|l| l.ends_with(&expected) && l.to_lowercase().contains(&kind.to_lowercase())),
            "kubectl did not create {kind}/{name}:\n{applied}"
        );
    }
    // Everything namespaced lives in gantry-system.
    for o in &objects.0 {
        let kind = s(&o["kind"]);
        let cluster_scoped = [
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingWebhookConfiguration",
        ];
        // The component that lets Gantry read pull secrets grants it in the namespaces listed.
        let granted_elsewhere = ["Role", "RoleBinding"].contains(&kind)
            && o["metadata"]["name"] == "gantry-read-pull-secrets";
        if !cluster_scoped.contains(&kind) && !granted_elsewhere {
            assert_eq!(
                o["metadata"]["namespace"], "gantry-system",
                "{kind} {:?}",
                o["metadata"]["name"]
            );
        }
    }
    objects
}

// ---- a stand-in for the API server's discovery ----

/// (groupVersion, plural, kind, namespaced) of every kind the manifests may use.
const RESOURCES: &[(&str, &str, &str, bool)] = &[
    ("v1", "namespaces", "Namespace", false),
    ("v1", "serviceaccounts", "ServiceAccount", true),
    ("v1", "configmaps", "ConfigMap", true),
    ("v1", "secrets", "Secret", true),
    ("v1", "services", "Service", true),
    (
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
    ),
    ("apps/v1", "deployments", "Deployment", true),
    (
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "clusterroles",
        "ClusterRole",
        false,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    ),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", true),
    (
        "networking.k8s.io/v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        "RoleBinding",
        true,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
    ),
    ("cert-manager.io/v1", "issuers", "Issuer", true),
    ("cert-manager.io/v1", "certificates", "Certificate", true),
    // The Helm chart's optional objects (kubernetes/helm.rs).
    (
        "networking.k8s.io/v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
    ),
    (
        "monitoring.coreos.com/v1",
        "servicemonitors",
        "ServiceMonitor",
        true,
    ),
];

/// What the stand-in answers for one GET path.
fn discovery(path: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    let path = path.split('?').next().unwrap_or(path);
    let group_versions: BTreeSet<&str> = RESOURCES.iter().map(|r| r.0).collect();
    if path == "/api" {
        return Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}));
    }
    if path == "/apis" {
        let groups: Vec<_> = group_versions
            .iter()
            .filter_map(|gv| gv.split_once('/'))
            .map(|(g, v)| {
                let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
            })
            .collect();
        return Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
    }
    let gv = path
        .strip_prefix("/api/")
        .or_else(|| path.strip_prefix("/apis/"))?;
    if !group_versions.contains(gv) {
        return None;
    }
    let resources: Vec<_> = RESOURCES
        .iter()
        .filter(|r| r.0 == gv)
        .map(|(_, plural, kind, namespaced)| {
            json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": namespaced,
                "kind": kind, "verbs": ["create", "delete", "get", "list", "patch", "update"]})
        })
        .collect();
    Some(json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources}))
}

/// Serves discovery on a free loopback port; every other GET is 404 (nothing exists yet),
/// anything but GET is recorded and refused (a client dry run must not write).
struct FakeApiServer {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeApiServer {
    fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve_connection(stream, &log));
            }
        });
        FakeApiServer { url, requests }
    }
}

fn serve_connection(stream: TcpStream, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        log.lock().unwrap().push(format!("{method} {path}"));
        let (status, body) = match (method, discovery(path)) {
            ("GET", Some(doc)) => ("200 OK", doc),
            ("GET", None) => (
                "404 Not Found",
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "not found"}),
            ),
            _ => (
                "405 Method Not Allowed",
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "MethodNotAllowed", "code": 405, "message": "read-only stand-in"}),
            ),
        };
        let body = body.to_string();
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// `kubectl apply --dry-run=client --validate=false -f -` of `yaml`; returns kubectl's stdout.
fn dry_run_apply(yaml: &str) -> String {
    let server = FakeApiServer::start();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {}\n\
             contexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: nobody\n\
             current-context: stand-in\nusers:\n- name: nobody\n  user: {{}}\n",
            server.url
        ),
    )
    .unwrap();
    let mut child = kubectl()
        .args(["apply", "--dry-run=client", "--validate=false", "-f", "-"])
        .arg("--cache-dir")
        .arg(home.path().join("cache"))
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl must be installed for the deploy/kubernetes tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl apply --dry-run=client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "a client dry run wrote: {requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.starts_with("GET /apis")),
        "kubectl never asked the stand-in: {requests:?}"
    );
    stdout
}

// ---- copies of the tree, for the overlays that need files or edits ----

/// deploy/kubernetes copied into a temp dir, without certificates a developer may have made
/// in gantry-cert/certs.
fn copy_deploy_tree() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                if entry.file_name() == "certs" {
                    std::fs::create_dir_all(&target).unwrap();
                    continue;
                }
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    copy(&deploy_dir(), &tmp.path().join("kubernetes"));
    tmp
}

/// Runs the real `gantry cert` the way docs/admission.md tells users to.
fn gantry_cert(root: &Path) -> PathBuf {
    let certs = root.join("kubernetes/gantry-cert/certs");
    let out = gantry(
        root,
        &[
            "cert",
            "--service",
            "gantry",
            "--namespace",
            "gantry-system",
            "--out",
            certs.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "gantry cert:\n{}", stderr(&out));
    certs
}

/// Uncomments the `components: [../single-replica]` lines an overlay ships commented out.
fn enable_single_replica(overlay: &Path) {
    let file = overlay.join("kustomization.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let commented = "# components:\n#   - ../single-replica\n";
    assert!(
        text.contains(commented),
        "{} should offer the component, commented out",
        file.display()
    );
    let enabled = text.replace(commented, "components:\n  - ../single-replica\n");
    std::fs::write(&file, enabled).unwrap();
}

// ---- the properties ----

/// The port number of the container port named `name`.
fn container_port(c: &Value, name: &str) -> u64 {
    seq(&c["ports"])
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port {name}"))
}

/// Resolves a probe's port (number or name) to a number.
fn probe_port(c: &Value, probe: &str) -> (String, u64) {
    let get = &c[probe]["httpGet"];
    let port = match &get["port"] {
        Value::Number(n) => n.as_u64().unwrap(),
        named => container_port(c, s(named)),
    };
    (s(&get["path"]).to_string(), port)
}

fn assert_labels_select(selector: &Value, labels: &Value, what: &str) {
    let selector = selector.as_mapping().expect("selector");
    assert!(
        !selector.is_empty(),
        "{what}: empty selector selects everything"
    );
    for (k, v) in selector {
        assert_eq!(&labels[k], v, "{what}: pod template lacks {k:?}");
    }
}

/// What every way of installing shares: the webhook, the Service, the pod's hardening.
fn assert_common(o: &Objects) {
    assert!(o.find("Namespace", "gantry-system").is_some());

    // Pod hardening.
    let pod = &o.deployment()["spec"]["template"]["spec"];
    let c = o.container();
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["runAsNonRoot"] == true || pod["securityContext"]["runAsNonRoot"] == true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(!c["resources"][k][r].is_null(), "resources.{k}.{r}");
        }
    }
    assert_eq!(pod["serviceAccountName"], "gantry");
    assert!(o.find("ServiceAccount", "gantry").is_some());

    // Command, config mount, probes on the admin port.
    let cmd: Vec<&str> = strings(&c["command"]);
    assert_eq!(
        cmd,
        ["gantry", "serve", "--config", "/etc/gantry/gantry.toml"]
    );
    assert_eq!(container_port(c, "http"), 8080);
    assert_eq!(container_port(c, "admin"), 9090);
    assert_eq!(container_port(c, "admission"), 8443);
    assert_eq!(probe_port(c, "livenessProbe"), ("/healthz".into(), 9090));
    assert_eq!(probe_port(c, "readinessProbe"), ("/readyz".into(), 9090));
    let env = seq(&c["env"]);
    let pod_ns = env
        .iter()
        .find(|e| e["name"] == "POD_NAMESPACE")
        .expect("POD_NAMESPACE");
    assert_eq!(
        pod_ns["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );

    let mounts = seq(&c["volumeMounts"]);
    let mount = |path: &str| {
        mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("nothing mounted at {path}"))
    };
    let volume = |name: &Value| {
        seq(&pod["volumes"])
            .iter()
            .find(|v| &v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name:?}"))
    };
    let config_volume = volume(&mount("/etc/gantry/gantry.toml")["name"]);
    let cm = o.get("ConfigMap", s(&config_volume["configMap"]["name"]));
    assert!(
        cm["data"]["gantry.toml"].is_string(),
        "the ConfigMap holds gantry.toml"
    );
    assert_eq!(
        s(&cm["data"]["gantry.toml"]),
        std::fs::read_to_string(deploy_dir().join("base/gantry.toml")).unwrap()
    );
    let tls = volume(&mount("/etc/gantry/tls")["name"]);
    assert!(tls["secret"]["secretName"].is_string(), "TLS from a Secret");
    assert!(!volume(&mount("/var/lib/gantry")["name"]).is_null());
    assert!(!volume(&mount("/tmp")["name"]).is_null(), "a writable /tmp");

    // Service: 443 → the admission port; selectors match the pods.
    let labels = &o.deployment()["spec"]["template"]["metadata"]["labels"];
    let svc = o.get("Service", "gantry");
    assert_labels_select(&svc["spec"]["selector"], labels, "Service");
    assert_labels_select(
        &o.deployment()["spec"]["selector"]["matchLabels"],
        labels,
        "Deployment",
    );
    let ports = seq(&svc["spec"]["ports"]);
    let port = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no Service port {name}"))
    };
    assert_eq!(port("admission")["port"], 443);
    assert_eq!(port("admission")["targetPort"], "admission");
    assert_eq!(port("http")["port"], 8080);
    assert_eq!(port("admin")["port"], 9090);

    // No RBAC over Secrets in the base: without a verified API server, pull secrets are not
    // read (../apiserver-client-auth grants them per namespace).
    assert!(
        o.of_kind("ClusterRoleBinding").is_empty() && o.of_kind("ClusterRole").is_empty(),
        "no cluster-wide roles"
    );
    // The API token comes from a Secret, and a NetworkPolicy covers the pods.
    let token = env
        .iter()
        .find(|e| e["name"] == "GANTRY_AUTH_TOKEN")
        .expect("GANTRY_AUTH_TOKEN");
    assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "gantry-auth");
    let policy = o.get("NetworkPolicy", "gantry");
    assert_labels_select(
        &policy["spec"]["podSelector"]["matchLabels"],
        labels,
        "NetworkPolicy",
    );
    let ports: Vec<&str> = seq(&policy["spec"]["ingress"])
        .iter()
        .flat_map(|rule| seq(&rule["ports"]).iter().map(|p| s(&p["port"])))
        .collect();
    assert_eq!(ports, ["admission", "http", "admin"]);
    for rule in seq(&policy["spec"]["ingress"]).iter().skip(1) {
        assert!(
            !seq(&rule["from"]).is_empty(),
            "8080 and 9090 are not open to all: {rule:?}"
        );
    }

    assert_webhook(o);
}

fn assert_webhook(o: &Objects) {
    let vwc = o.get("ValidatingWebhookConfiguration", "gantry");
    let webhooks = seq(&vwc["webhooks"]);
    assert_eq!(webhooks.len(), 1, "one webhook");
    let w = o.webhook();
    assert_eq!(w["name"], "images.gantry.dev");
    assert_eq!(strings(&w["admissionReviewVersions"]), ["v1"]);
    assert_eq!(w["sideEffects"], "None");
    assert_eq!(w["failurePolicy"], "Fail");
    let timeout = w["timeoutSeconds"].as_u64().expect("timeoutSeconds");
    assert!((1..=30).contains(&timeout), "timeoutSeconds {timeout}");

    let svc = &w["clientConfig"]["service"];
    assert_eq!(svc["name"], "gantry");
    assert_eq!(svc["namespace"], "gantry-system");
    assert_eq!(svc["path"], "/admission");
    assert_eq!(svc["port"], 443);
    assert!(w["clientConfig"]["url"].is_null());

    let exprs = seq(&w["namespaceSelector"]["matchExpressions"]);
    let by_name = exprs
        .iter()
        .find(|e| e["key"] == "kubernetes.io/metadata.name")
        .expect("namespaceSelector on kubernetes.io/metadata.name");
    assert_eq!(by_name["operator"], "NotIn");
    let excluded = strings(&by_name["values"]);
    assert!(excluded.contains(&"kube-system") && excluded.contains(&"gantry-system"));
    let opt_out = exprs
        .iter()
        .find(|e| e["key"] == "gantry.dev/ignore")
        .expect("gantry.dev/ignore opt-out");
    assert_eq!(opt_out["operator"], "NotIn");
    assert_eq!(strings(&opt_out["values"]), ["true"]);

    let conditions = seq(&w["matchConditions"]);
    let names: BTreeSet<&str> = conditions.iter().map(|c| s(&c["name"])).collect();
    assert_eq!(
        names.len(),
        conditions.len(),
        "matchCondition names are unique"
    );
    for c in conditions {
        assert!(!s(&c["expression"]).trim().is_empty());
    }
    let all = conditions
        .iter()
        .map(|c| s(&c["expression"]))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        all.contains("system:serviceaccount:gantry-system:gantry"),
        "{all}"
    );

    // (group, resource) → operations, over every rule.
    let mut covered: BTreeSet<(String, String, String)> = BTreeSet::new();
    for rule in seq(&w["rules"]) {
        for g in strings(&rule["apiGroups"]) {
            assert_eq!(strings(&rule["apiVersions"]), ["v1"], "{rule:?}");
            for r in strings(&rule["resources"]) {
                for op in strings(&rule["operations"]) {
                    covered.insert((g.to_string(), r.to_string(), op.to_string()));
                }
            }
        }
    }
    let kinds = [
        ("", "pods"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apps", "replicasets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    ];
    for (g, r) in kinds {
        for op in ["CREATE", "UPDATE"] {
            assert!(
                covered.contains(&(g.into(), r.into(), op.into())),
                "rules miss {op} {g}/{r}"
            );
        }
    }
    assert!(covered.contains(&(
        "".into(),
        "pods/ephemeralcontainers".into(),
        "UPDATE".into()
    )));
    assert!(
        covered
            .iter()
            .all(|(_, _, op)| op == "CREATE" || op == "UPDATE"),
        "only CREATE and UPDATE: {covered:?}"
    );
}

// ---- the overlays ----

#[test]
fn base_is_two_replicas_on_postgres() {
    let o = build_and_apply(&deploy_dir().join("base"));
    assert_common(&o);
    let d = o.deployment();
    assert!(d["spec"]["replicas"].as_u64().unwrap() >= 2);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let spread = seq(&d["spec"]["template"]["spec"]["topologySpreadConstraints"]);
    assert!(
        spread
            .iter()
            .any(|t| t["topologyKey"] == "kubernetes.io/hostname")
    );

    let env = seq(&o.container()["env"]);
    let db = env
        .iter()
        .find(|e| e["name"] == "GANTRY_DATABASE_URL")
        .expect("GANTRY_DATABASE_URL");
    assert_eq!(db["valueFrom"]["secretKeyRef"]["name"], "gantry-postgres");
    assert_eq!(db["valueFrom"]["secretKeyRef"]["key"], "url");

    let pdb = o.get("PodDisruptionBudget", "gantry");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_labels_select(
        &pdb["spec"]["selector"]["matchLabels"],
        &d["spec"]["template"]["metadata"]["labels"],
        "PodDisruptionBudget",
    );
    // The base has no certificate: the overlays add it.
    assert!(o.webhook()["clientConfig"]["caBundle"].is_null());
}

#[test]
fn cert_manager_overlay_issues_the_mounted_secret_and_injects_its_ca() {
    let o = build_and_apply(&deploy_dir().join("cert-manager"));
    assert_common(&o);
    let vwc = o.get("ValidatingWebhookConfiguration", "gantry");
    let inject = s(&vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]);
    let (ns, name) = inject.split_once('/').unwrap();
    assert_eq!(ns, "gantry-system");
    let serving = o.get("Certificate", name);

    // The serving Certificate writes the Secret the pods mount, for the name the API server dials.
    let volumes = seq(&o.deployment()["spec"]["template"]["spec"]["volumes"]);
    let tls = volumes.iter().find(|v| v["name"] == "tls").unwrap();
    assert_eq!(serving["spec"]["secretName"], tls["secret"]["secretName"]);
    let dns = strings(&serving["spec"]["dnsNames"]);
    assert!(dns.contains(&"gantry.gantry-system.svc"), "{dns:?}");
    assert!(serving["spec"]["isCA"].is_null() || serving["spec"]["isCA"] == false);

    // Signed by a CA issuer whose CA comes from the self-signed issuer.
    let ca_issuer = o.get("Issuer", s(&serving["spec"]["issuerRef"]["name"]));
    let ca_cert = o
        .of_kind("Certificate")
        .into_iter()
        .find(|c| c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"])
        .expect("a Certificate writing the CA issuer's secret");
    assert_eq!(ca_cert["spec"]["isCA"], true);
    let root = o.get("Issuer", s(&ca_cert["spec"]["issuerRef"]["name"]));
    assert!(root["spec"]["selfSigned"].is_mapping());
}

#[test]
fn gantry_cert_overlay_uses_the_files_gantry_cert_writes() {
    let tmp = copy_deploy_tree();
    let certs = gantry_cert(tmp.path());
    let o = build_and_apply(&tmp.path().join("kubernetes/gantry-cert"));
    assert_common(&o);

    // The Deployment mounts the generated Secret (its name carries the content hash).
    let volumes = seq(&o.deployment()["spec"]["template"]["spec"]["volumes"]);
    let secret_name =
        s(&volumes.iter().find(|v| v["name"] == "tls").unwrap()["secret"]["secretName"]);
    assert!(secret_name.starts_with("gantry-tls-"), "{secret_name}");
    let secret = o.get("Secret", secret_name);
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let b64 = base64::engine::general_purpose::STANDARD;
    for file in ["tls.crt", "tls.key"] {
        // kustomize wraps long base64 over lines (a block scalar); the API server's decoder
        // skips the line breaks, as this does.
        let wrapped = s(&secret["data"][file]);
        let data = b64.decode(wrapped.replace('\n', "")).unwrap();
        assert_eq!(data, std::fs::read(certs.join(file)).unwrap(), "{file}");
    }
    assert!(
        secret["data"]["ca.key"].is_null(),
        "the CA key stays out of the cluster"
    );

    // Every webhook trusts ca.crt, and the patch merged into the webhook instead of
    // replacing it (a webhook added to the base but not to `gantry cert`'s list would show up
    // here as a second, incomplete entry — or one without caBundle).
    let ca = std::fs::read(certs.join("ca.crt")).unwrap();
    let vwc = o.get("ValidatingWebhookConfiguration", "gantry");
    for w in seq(&vwc["webhooks"]) {
        let bundle = b64.decode(s(&w["clientConfig"]["caBundle"])).unwrap();
        assert_eq!(bundle, ca, "caBundle of {:?}", w["name"]);
    }
    assert_webhook(&o);
}

#[test]
fn single_replica_component_is_one_sqlite_pod_on_a_volume() {
    let tmp = copy_deploy_tree();
    gantry_cert(tmp.path());
    for overlay in ["cert-manager", "gantry-cert"] {
        let dir = tmp.path().join("kubernetes").join(overlay);
        enable_single_replica(&dir);
        let o = build_and_apply(&dir);
        assert_common(&o);
        let d = o.deployment();
        assert_eq!(d["spec"]["replicas"], 1, "{overlay}");
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate", "{overlay}");
        assert!(
            d["spec"]["strategy"]["rollingUpdate"].is_null(),
            "{overlay}"
        );
        let env = seq(&o.container()["env"]);
        assert!(
            env.iter().all(|e| e["name"] != "GANTRY_DATABASE_URL"),
            "{overlay}: SQLite, so no database URL"
        );
        assert!(
            env.iter().any(|e| e["name"] == "POD_NAMESPACE"),
            "{overlay}"
        );
        assert!(
            o.find("PodDisruptionBudget", "gantry").is_none(),
            "{overlay}: minAvailable 1 of 1 would block drains"
        );
        let volumes = seq(&d["spec"]["template"]["spec"]["volumes"]);
        let data = volumes.iter().find(|v| v["name"] == "data").unwrap();
        assert!(data["emptyDir"].is_null(), "{overlay}: {data:?}");
        let claim = s(&data["persistentVolumeClaim"]["claimName"]);
        assert!(
            o.find("PersistentVolumeClaim", claim).is_some(),
            "{overlay}"
        );
    }
}

/// The component for API servers that present a client certificate: Gantry verifies it (the
/// CA from a Secret, overriding the base's opt-out) and reads pull secrets only in the
/// namespaces granted, with `get` and nothing more.
#[test]
fn apiserver_client_auth_component_verifies_clients_and_grants_per_namespace() {
    let tmp = copy_deploy_tree();
    gantry_cert(tmp.path());
    let dir = tmp.path().join("kubernetes/gantry-cert");
    let file = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!("{text}components:\n  - ../apiserver-client-auth\n"),
    )
    .unwrap();
    let o = build_and_apply(&dir);
    assert_common(&o);
    let c = o.container();
    let ca = seq(&c["env"])
        .iter()
        .find(|e| e["name"] == "GANTRY_ADMISSION_CLIENT_CA")
        .expect("GANTRY_ADMISSION_CLIENT_CA");
    let path = s(&ca["value"]);
    let mount = seq(&c["volumeMounts"])
        .iter()
        .find(|m| path.starts_with(s(&m["mountPath"])))
        .expect("the CA file is mounted");
    let volume = seq(&o.deployment()["spec"]["template"]["spec"]["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], "gantry-apiserver-client-ca");
    let role = o.get("Role", "gantry-read-pull-secrets");
    assert_ne!(role["metadata"]["namespace"], "gantry-system");
    let rules = seq(&role["rules"]);
    assert_eq!(rules.len(), 1);
    assert_eq!(strings(&rules[0]["resources"]), ["secrets"]);
    assert_eq!(strings(&rules[0]["verbs"]), ["get"]);
    let binding = o.get("RoleBinding", "gantry-read-pull-secrets");
    assert_eq!(binding["roleRef"]["name"], "gantry-read-pull-secrets");
    assert_eq!(binding["subjects"][0]["name"], "gantry");
    assert_eq!(binding["subjects"][0]["namespace"], "gantry-system");
}

/// The ConfigMap's gantry.toml is valid TOML with the admission settings the manifests depend
/// on. (Whether gantry serve accepts every key is for a test that loads it with the server's
/// own config parser.)
#[test]
fn config_file_matches_the_deployment() {
    let text = std::fs::read_to_string(deploy_dir().join("base/gantry.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    let admission = config["admission"].as_table().expect("[admission]");
    let port = |addr: &toml::Value| -> u16 {
        addr.as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .1
            .parse()
            .unwrap()
    };
    // The ports the Deployment and Service expose.
    assert_eq!(port(&config["listen"]), 8080);
    assert_eq!(port(&config["admin_listen"]), 9090);
    assert_eq!(port(&admission["listen"]), 8443);
    // Listening on all of the pod's interfaces, or the Service cannot reach it.
    for addr in [
        &config["listen"],
        &config["admin_listen"],
        &admission["listen"],
    ] {
        assert!(addr.as_str().unwrap().starts_with("0.0.0.0:"), "{addr:?}");
    }
    // The files of the mounted Secret.
    assert_eq!(
        admission["tls_cert"].as_str(),
        Some("/etc/gantry/tls/tls.crt")
    );
    assert_eq!(
        admission["tls_key"].as_str(),
        Some("/etc/gantry/tls/tls.key")
    );
    assert_eq!(config["data_dir"].as_str(), Some("/var/lib/gantry"));
    // The documented rollout starts in warn mode, failing closed.
    assert_eq!(admission["mode"].as_str(), Some("warn"));
    assert_eq!(admission["failure_mode"].as_str(), Some("closed"));
    // The safety margin leaves Gantry time below the webhook's timeoutSeconds.
    let margin = humantime_secs(admission["safety_margin"].as_str().unwrap());
    let o = Objects(documents(&kustomize(&deploy_dir().join("base"))));
    let timeout = o.webhook()["timeoutSeconds"].as_u64().unwrap();
    assert!(
        margin < timeout,
        "safety_margin {margin}s vs timeoutSeconds {timeout}"
    );
    // The database URL comes from the Secret, not the file.
    assert!(!config.contains_key("database_url"));
}

/// Whole seconds of a "2s"-style duration.
fn humantime_secs(d: &str) -> u64 {
    d.strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{d}"))
}

// ---- the shipped config and `gantry cert`'s files, served by the real gantry serve ----

/// POSTs an AdmissionReview to `addr` over TLS, verifying the server as the API server does:
/// against `ca_pem` only, for the Service's name (not the address dialled).
fn admission_post(
    addr: std::net::SocketAddr,
    ca_pem: &[u8],
    review: &serde_json::Value,
) -> serde_json::Value {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("gantry.gantry-system.svc").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let body = review.to_string();
    let head = format!(
        "POST /admission?timeout=10s HTTP/1.1\r\nhost: gantry.gantry-system.svc\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(body.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A server may close without close_notify after `connection: close`.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => panic!("TLS read: {e}"),
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{text}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn pod_review(uid: &str, namespace: &str, image: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": namespace},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
}

/// The ConfigMap's gantry.toml starts the real server (every key known, every value valid),
/// and the admission listener serves `gantry cert`'s certificate, which verifies against
/// ca.crt for the name the API server dials. Only the listen addresses, the data directory and
/// the certificate paths are overridden (by flags, as a pod could with env).
#[test]
fn shipped_config_serves_admission_with_the_gantry_cert_certificate() {
    let home = tempfile::tempdir().unwrap();
    let certs = home.path().join("certs");
    let out = gantry(home.path(), &["cert", "--out", certs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "gantry cert:\n{}", stderr(&out));
    let config = std::fs::read_to_string(deploy_dir().join("base/gantry.toml")).unwrap();
    let serve = crate::serve::ServeSetup::new(home.path())
        .config(&config)
        .arg("--admission-listen")
        .arg("127.0.0.1:0")
        .arg("--tls-cert")
        .arg(certs.join("tls.crt").to_str().unwrap())
        .arg("--tls-key")
        .arg(certs.join("tls.key").to_str().unwrap())
        .env("POD_NAMESPACE", "gantry-system")
        .env("GANTRY_AUTH_TOKEN", "the-token-of-the-gantry-auth-secret")
        .start();
    let addr = serve.admission.expect("the admission listener runs");
    let ca = std::fs::read(certs.join("ca.crt")).unwrap();

    // Gantry's own namespace (POD_NAMESPACE) and kube-system are exempt.
    for (uid, ns) in [("own", "gantry-system"), ("system", "kube-system")] {
        let answer = admission_post(addr, &ca, &pod_review(uid, ns, "nginx"));
        assert_eq!(answer["response"]["uid"], uid);
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
    }
    // Elsewhere the shipped warn mode admits what cannot be judged (no registry listens on
    // port 1), and says so.
    let answer = admission_post(
        addr,
        &ca,
        &pod_review("app", "default", "127.0.0.1:1/app/api:1"),
    );
    let response = &answer["response"];
    assert_eq!(response["uid"], "app");
    assert_eq!(response["allowed"], true, "warn mode admits: {answer}");
    let warnings = response["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("127.0.0.1:1/app/api:1")),
        "{answer}"
    );
}

// deploy/helm/gantry: the same checks for the Helm chart.
mod helm;
