//! deploy/helm/gantry with a real `helm` (GANTRY_HELM, else on PATH; scripts/test.sh unpacks
//! one): `helm lint` and `helm template` of the chart's defaults and of every documented
//! values file in `examples/`, each rendering dry-run applied by kubectl against the
//! discovery stand-in of the parent module and checked structurally; the rendered
//! `gantry.toml` parses as `ServeConfig` and resolves with `Settings::resolve`, and says what
//! the values say. Bad values are refused by the chart with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

use gantry_server::config::AuthConfig;
use gantry_server::{ConfigError, ServeConfig, Settings};
use serde_norway::Value;

use super::{Objects, documents, dry_run_apply, gantry_cert, probe_port, s, seq, strings};

fn helm() -> Command {
    let path = std::env::var_os("GANTRY_HELM").unwrap_or_else(|| "helm".into());
    let mut cmd = Command::new(path);
    // No user's repositories, plugins or caches.
    let home = std::env::temp_dir().join("gantry-helm-test-home");
    cmd.env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/gantry")
}

/// Every documented values file (`examples/*.yaml`), sorted.
fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "examples/ lost its values files: {files:?}"
    );
    files
}

/// `helm ARGS CHART -n gantry-system EXTRA`; (success, stdout, stderr).
fn run_helm(verb: &str, extra: &[&str]) -> (bool, String, String) {
    let mut cmd = helm();
    cmd.arg(verb);
    if verb == "template" {
        cmd.arg("gantry");
    }
    cmd.arg(chart())
        .args(["--namespace", "gantry-system"])
        .args(extra);
    let out = cmd
        .output()
        .expect("helm must be installed for the deploy/helm tests (scripts/test.sh unpacks one)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// lint + template with `extra` values; the rendered objects, dry-run applied by kubectl.
fn render(extra: &[&str]) -> Objects {
    let (ok, out, err) = run_helm("lint", &[&["--strict"][..], extra].concat());
    assert!(ok, "helm lint {extra:?}:\n{out}\n{err}");
    let (ok, yaml, err) = run_helm("template", extra);
    assert!(ok, "helm template {extra:?}:\n{err}");
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
    objects
}

/// The rendered gantry.toml, parsed by Gantry itself.
fn config_text(o: &Objects) -> String {
    s(&o.get("ConfigMap", "gantry-config")["data"]["gantry.toml"]).to_string()
}

fn load_config(text: &str) -> ServeConfig {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gantry.toml");
    std::fs::write(&file, text).unwrap();
    ServeConfig::load(&file).unwrap_or_else(|e| panic!("rendered gantry.toml: {e}\n{text}"))
}

/// Resolves the rendered config as Gantry starts with it in the pod — where the token is in
/// GANTRY_AUTH_TOKEN from the Secret (given inline here: tests do not set environment
/// variables).
fn resolve(config: ServeConfig) -> Result<Settings, ConfigError> {
    match &config.auth {
        Some(AuthConfig::Bearer {
            token_env: Some(var),
            token: None,
        }) => assert_eq!(var, "GANTRY_AUTH_TOKEN"),
        other => panic!("[auth] should be the bearer token from GANTRY_AUTH_TOKEN: {other:?}"),
    }
    Settings::resolve(ServeConfig {
        data_dir: Some(std::env::temp_dir()),
        auth: Some(AuthConfig::Bearer {
            token: Some("the-secret's-token".to_string()),
            token_env: None,
        }),
        ..config
    })
}

/// What every rendering shares: hardened pod, ports, probes, config and TLS mounts, webhook.
fn assert_common(o: &Objects) {
    let pod = &o.deployment()["spec"]["template"]["spec"];
    let c = o.container();
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["enableServiceLinks"], false);
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(!c["resources"][k][r].is_null(), "resources.{k}.{r}");
        }
    }
    assert_eq!(
        strings(&c["command"]),
        ["gantry", "serve", "--config", "/etc/gantry/gantry.toml"]
    );
    assert_eq!(probe_port(c, "livenessProbe"), ("/healthz".into(), 9090));
    assert_eq!(probe_port(c, "readinessProbe"), ("/readyz".into(), 9090));
    let mounts = seq(&c["volumeMounts"]);
    let volume_at = |path: &str| {
        let m = mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("nothing mounted at {path}"));
        seq(&pod["volumes"])
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("no volume for {path}"))
            .clone()
    };
    assert_eq!(
        volume_at("/etc/gantry/gantry.toml")["configMap"]["name"],
        "gantry-config"
    );
    assert!(volume_at("/tmp")["emptyDir"].is_mapping());
    // The Service selects the pods; 443 reaches the admission port.
    let labels = &o.deployment()["spec"]["template"]["metadata"]["labels"];
    let svc = o.get("Service", "gantry");
    for (k, v) in svc["spec"]["selector"].as_mapping().unwrap() {
        assert_eq!(&labels[k], v, "Service selector {k:?}");
    }
    let admission = seq(&svc["spec"]["ports"])
        .iter()
        .find(|p| p["name"] == "admission")
        .unwrap();
    assert_eq!(admission["port"], 443);
    // The webhook calls that Service, and never judges Gantry's own namespace.
    let w = o.webhook();
    assert_eq!(w["clientConfig"]["service"]["name"], "gantry");
    assert_eq!(w["clientConfig"]["service"]["namespace"], "gantry-system");
    assert_eq!(w["clientConfig"]["service"]["path"], "/admission");
    assert_eq!(w["sideEffects"], "None");
    let ns = &seq(&w["namespaceSelector"]["matchExpressions"])[0];
    assert!(strings(&ns["values"]).contains(&"gantry-system"), "{ns:?}");
    assert!(strings(&ns["values"]).contains(&"kube-system"), "{ns:?}");
    let conditions = seq(&w["matchConditions"]);
    assert!(
        conditions
            .iter()
            .any(|c| s(&c["expression"]).contains("system:serviceaccount:gantry-system:gantry'"))
    );
    // The rendered config is Gantry's own: it parses, and its TLS files are the mounted ones.
    let config = load_config(&config_text(o));
    assert_eq!(
        config.admission.tls_cert.as_deref(),
        Some(Path::new("/etc/gantry/tls/tls.crt"))
    );
    assert_eq!(config.listen.port(), 8080);
    assert_eq!(config.admin_listen.port(), 9090);
    assert_eq!(config.admission.listen.port(), 8443);
}

fn env_var<'a>(o: &'a Objects, name: &str) -> Option<&'a Value> {
    seq(&o.container()["env"])
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn default_values_are_the_cert_manager_install_on_postgres() {
    let o = render(&[]);
    assert_common(&o);
    assert_eq!(o.deployment()["spec"]["replicas"], 2);
    assert_eq!(
        o.deployment()["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    assert_eq!(
        o.get("PodDisruptionBudget", "gantry")["spec"]["minAvailable"],
        1
    );
    let db = env_var(&o, "GANTRY_DATABASE_URL").expect("database URL from a Secret");
    assert_eq!(db["valueFrom"]["secretKeyRef"]["name"], "gantry-postgres");
    // The default image cannot be pulled by accident from someone else's registry.
    assert_eq!(s(&o.container()["image"]), "registry.invalid/gantry:0.1.0");
    // cert-manager: the serving certificate is the mounted Secret, its CA is injected.
    let cert = o.get("Certificate", "gantry-serving");
    assert_eq!(cert["spec"]["secretName"], "gantry-tls");
    assert!(strings(&cert["spec"]["dnsNames"]).contains(&"gantry.gantry-system.svc"));
    let vwc = o.get("ValidatingWebhookConfiguration", "gantry");
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "gantry-system/gantry-serving"
    );
    assert_eq!(o.webhook()["failurePolicy"], "Fail");
    assert!(o.find("ServiceMonitor", "gantry").is_none());
    // The token comes from the Secret gantry-auth the user creates (like gantry-postgres).
    let token = env_var(&o, "GANTRY_AUTH_TOKEN").expect("token env");
    assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "gantry-auth");
    // No verified API server by default: no access to Secrets at all.
    assert!(o.of_kind("Role").is_empty() && o.of_kind("ClusterRole").is_empty());
    // Default NetworkPolicy: only the admission port is open.
    let np = o.get("NetworkPolicy", "gantry");
    let rules = seq(&np["spec"]["ingress"]);
    assert_eq!(rules.len(), 1, "{np:?}");
    assert_eq!(seq(&rules[0]["ports"])[0]["port"], "admission");
    // Warn mode, failing closed, every sender off; resolves as Gantry would start with it.
    let text = config_text(&o);
    let config = load_config(&text);
    assert_eq!(format!("{:?}", config.admission.mode), "Warn");
    let settings = resolve(config).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(settings.admission.is_some());
    assert!(!text.contains("enabled = true"), "{text}");
}

/// With the API server's client CA, Gantry verifies it, mounts the CA, and may read pull
/// secrets in the namespaces listed — there only.
#[test]
fn client_auth_and_pull_secret_namespaces() {
    let o = render(&[
        "--set",
        "admission.clientAuth.caSecret=apiserver-ca",
        "--set",
        "admission.clientAuth.names={kube-apiserver-gantry-client}",
        "--set",
        "rbac.pullSecretNamespaces={apps,team-b}",
        "--set",
        "registry.allow={registry.example.com,10.0.0.5:5000}",
        "--set",
        "admission.platforms={linux/amd64}",
    ]);
    assert_common(&o);
    let text = config_text(&o);
    let config = load_config(&text);
    assert_eq!(
        config.admission.client_ca.as_deref(),
        Some(Path::new("/etc/gantry/apiserver-ca/ca.crt"))
    );
    assert!(!config.admission.allow_unauthenticated_clients);
    assert_eq!(
        config.admission.client_names,
        ["kube-apiserver-gantry-client"]
    );
    assert_eq!(config.admission.platforms, ["linux/amd64"]);
    assert_eq!(
        config.registry.allow,
        ["registry.example.com", "10.0.0.5:5000"]
    );
    let pod = &o.deployment()["spec"]["template"]["spec"];
    assert!(
        seq(&pod["volumes"])
            .iter()
            .any(|v| v["secret"]["secretName"] == "apiserver-ca")
    );
    let roles = o.of_kind("Role");
    let namespaces: Vec<&str> = roles
        .iter()
        .map(|r| s(&r["metadata"]["namespace"]))
        .collect();
    assert_eq!(namespaces, ["apps", "team-b"]);
    for r in roles {
        assert_eq!(strings(&seq(&r["rules"])[0]["verbs"]), ["get"]);
    }
    assert_eq!(o.of_kind("RoleBinding").len(), 2);
    resolve(config).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn every_documented_values_file_lints_renders_and_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = gantry_cert(tmp.path());
    let ca = certs.join("ca.crt");
    for file in example_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let ca_arg = format!("tls.caCert={}", ca.display());
        let mut extra = vec!["-f", file.to_str().unwrap()];
        if name == "gantry-cert.yaml" {
            extra.extend(["--set-file", &ca_arg]);
        }
        let o = render(&extra);
        assert_common(&o);
        let text = config_text(&o);
        let config = load_config(&text);
        let w = o.webhook();
        match name.as_str() {
            "audit.yaml" => {
                assert_eq!(format!("{:?}", config.admission.mode), "Warn");
                assert_eq!(w["failurePolicy"], "Ignore", "audit never blocks");
            }
            "cert-manager.yaml" => {
                assert_eq!(
                    s(&o.container()["image"]),
                    "registry.example.com/platform/gantry:0.1.0"
                );
            }
            "enforce.yaml" => {
                assert_eq!(format!("{:?}", config.admission.mode), "Enforce");
                assert_eq!(w["failurePolicy"], "Fail");
                assert_eq!(config.admission.namespaces.len(), 1);
                assert_eq!(config.admission.exemptions.len(), 1);
                assert!(
                    strings(&seq(&w["namespaceSelector"]["matchExpressions"])[0]["values"])
                        .contains(&"cert-manager")
                );
                // One token for the API and the enabled sender, from the Secret, by name.
                let token = env_var(&o, "GANTRY_AUTH_TOKEN").expect("token env");
                assert_eq!(token["valueFrom"]["secretKeyRef"]["name"], "gantry-auth");
                assert!(config.webhooks.distribution.enabled);
                assert!(!config.webhooks.harbor.enabled);
                assert!(
                    o.find("Secret", "gantry-auth").is_none(),
                    "existingSecret is used"
                );
                let settings = resolve(config).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
                assert!(!settings.api_auth.operator.is_anonymous());
                assert!(
                    !settings.endpoints[&gantry_server::webhook::Source::Distribution]
                        .auth
                        .is_anonymous()
                );
                assert!(
                    text.contains("[retention]"),
                    "extraConfig is appended:\n{text}"
                );
                let sm = o.get("ServiceMonitor", "gantry");
                assert_eq!(seq(&sm["spec"]["endpoints"])[0]["port"], "admin");
                assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
                let np = o.get("NetworkPolicy", "gantry");
                assert_eq!(seq(&np["spec"]["ingress"]).len(), 3, "{np:?}");
                assert_eq!(o.deployment()["spec"]["replicas"], 3);
                continue;
            }
            "gantry-cert.yaml" => {
                assert!(o.find("Certificate", "gantry-serving").is_none());
                let pem = std::fs::read(&ca).unwrap();
                use base64::Engine as _;
                let bundle = base64::engine::general_purpose::STANDARD
                    .decode(s(&w["clientConfig"]["caBundle"]))
                    .unwrap();
                assert_eq!(bundle, pem, "caBundle is gantry cert's ca.crt");
                let pod = &o.deployment()["spec"]["template"]["spec"];
                assert!(
                    seq(&pod["volumes"])
                        .iter()
                        .any(|v| v["secret"]["secretName"] == "gantry-tls")
                );
            }
            "single-replica.yaml" => {
                assert_eq!(o.deployment()["spec"]["replicas"], 1);
                assert_eq!(o.deployment()["spec"]["strategy"]["type"], "Recreate");
                assert!(env_var(&o, "GANTRY_DATABASE_URL").is_none(), "SQLite");
                assert!(o.find("PodDisruptionBudget", "gantry").is_none());
                assert!(o.find("PersistentVolumeClaim", "gantry-data").is_some());
            }
            other => panic!("{other}: add its expectations here"),
        }
        resolve(config).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    }
}

#[test]
fn a_digest_pins_the_image() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let o = render(&["--set", &format!("image.digest={digest}")]);
    assert_eq!(
        s(&o.container()["image"]),
        format!("registry.invalid/gantry@{digest}")
    );
}

#[test]
fn unsafe_or_impossible_values_are_refused() {
    for (values, message) in [
        (
            vec![
                "--set",
                "replicaCount=2",
                "--set",
                "database.existingSecret=",
            ],
            "needs Postgres",
        ),
        (
            vec!["--set", "admission.mode=block"],
            "admission.mode must be",
        ),
        (
            vec!["--set", "auth.existingSecret="],
            "auth.existingSecret or auth.token",
        ),
        (
            vec!["--set", "rbac.pullSecretNamespaces={apps}"],
            "needs admission.clientAuth.caSecret",
        ),
        (
            vec!["--set", "admission.platform=linux/amd64"],
            "replaced by admission.platforms",
        ),
        (
            vec!["--set", "tls.certManager.enabled=false"],
            "is required without",
        ),
        (
            vec!["--set", "auth.token=x", "--set", "webhooks.enabled={nexus}"],
            "unknown sender",
        ),
    ] {
        let (ok, _, err) = run_helm("template", &values);
        assert!(!ok, "{values:?} rendered");
        assert!(err.contains(message), "{values:?}: {err}");
    }
}
