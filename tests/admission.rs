//! The Kubernetes admission webhook of `gantry serve`: real AdmissionReviews over HTTPS (a real
//! rustls handshake against the served certificate), images in a real registry.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, HoldingProxy, ImageBuilder, LayerBuilder, RegistryHarness};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

use crate::serve::{
    PINNED_BASE, Serve, ServeSetup, codes, good_image, metric, passwd_layer, root_image,
};

/// A self-signed certificate for 127.0.0.1, written as tls.crt / tls.key under `dir`.
fn write_cert(dir: &Path) -> String {
    let c = rcgen::generate_simple_self_signed(vec![
        "127.0.0.1".to_string(),
        "gantry.gantry-system.svc".to_string(),
    ])
    .unwrap();
    let pem = c.cert.pem();
    std::fs::write(dir.join("tls.crt"), &pem).unwrap();
    std::fs::write(dir.join("tls.key"), c.signing_key.serialize_pem()).unwrap();
    pem
}

/// A client certificate (PEM), as the API server presents to webhooks when its
/// AdmissionConfiguration names one.
#[derive(Clone)]
pub(crate) struct ClientIdentity {
    cert: String,
    key: String,
}

/// A CA written as `apiserver-ca.crt` under `dir`, and one client certificate it signed for
/// each of `names` (DNS subject alternative names).
fn write_client_pki(dir: &Path, names: &[&str]) -> Vec<ClientIdentity> {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test API server client CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("apiserver-ca.crt"), ca_cert.pem()).unwrap();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    names
        .iter()
        .map(|name| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &issuer).unwrap();
            ClientIdentity {
                cert: cert.pem(),
                key: key.serialize_pem(),
            }
        })
        .collect()
}

/// POSTs `body` to `https://addr/admission{query}`, trusting only `ca_pem`, presenting
/// `client` when given. Returns status and body.
fn https_post(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&ClientIdentity>,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        None => config.with_no_client_auth(),
        Some(id) => config
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                rustls::pki_types::PrivateKeyDer::from_pem_slice(id.key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: gantry.gantry-system.svc\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())?;
    // A server refusing an oversized body answers and closes before reading all of it: the
    // write may then fail while its answer is already on the way. Read it either way.
    let sent = tls.write_all(body).and_then(|()| tls.flush());
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // Servers may close without close_notify after `connection: close`.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(sent.err().unwrap_or(e)),
    }
    if raw.is_empty() {
        sent?;
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

struct Cluster {
    serve: Serve,
    ca: String,
    /// What this client presents: the API server's certificate, unless a test plays someone
    /// else.
    client: Option<ClientIdentity>,
}

impl Cluster {
    fn review(&self, timeout: &str, review: &Value) -> Value {
        let (status, body) = self.post(
            &format!("/admission?timeout={timeout}"),
            review.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(
            answer["response"]["uid"], review["request"]["uid"],
            "{answer}"
        );
        answer["response"].clone()
    }

    fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        https_post(
            self.serve.admission.unwrap(),
            &self.ca,
            self.client.as_ref(),
            path,
            body,
        )
        .unwrap_or_else(|e| panic!("HTTPS POST {path}: {e}\n{}", self.serve.log()))
    }
}

/// `gantry serve` with the admission listener, which takes reviews from the API server only
/// (its client certificate verified against a test CA).
fn start(home: &Path, config: &str) -> Cluster {
    start_with(home, ServeSetup::new(home).config(config))
}

fn start_with(home: &Path, setup: ServeSetup<'_>) -> Cluster {
    let ca = write_cert(home);
    let client = write_client_pki(home, &["kube-apiserver"]).remove(0);
    let serve = setup
        .arg("--admission-listen")
        .arg("127.0.0.1:0")
        .arg("--tls-cert")
        .arg(&home.join("tls.crt").display().to_string())
        .arg("--tls-key")
        .arg(&home.join("tls.key").display().to_string())
        .arg("--admission-client-ca")
        .arg(&home.join("apiserver-ca.crt").display().to_string())
        .start();
    assert!(
        serve.admission.is_some(),
        "no admission listener:\n{}",
        serve.log()
    );
    Cluster {
        serve,
        ca,
        client: Some(client),
    }
}

fn pod_spec(images: &[&str]) -> Value {
    json!({
        "containers": images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect::<Vec<_>>(),
    })
}

/// An AdmissionReview of `kind` (with its pod template) in `namespace`.
fn review(uid: &str, kind: &str, namespace: &str, images: &[&str]) -> Value {
    let spec = pod_spec(images);
    let (group, version, resource, object) = match kind {
        "Pod" => ("", "v1", "pods", json!({"spec": spec})),
        "ReplicationController" => (
            "",
            "v1",
            "replicationcontrollers",
            json!({"spec": {"template": {"spec": spec}}}),
        ),
        "Deployment" => (
            "apps",
            "v1",
            "deployments",
            json!({"spec": {"template": {"spec": spec}}}),
        ),
        "StatefulSet" => (
            "apps",
            "v1",
            "statefulsets",
            json!({"spec": {"template": {"spec": spec}}}),
        ),
        "DaemonSet" => (
            "apps",
            "v1",
            "daemonsets",
            json!({"spec": {"template": {"spec": spec}}}),
        ),
        "ReplicaSet" => (
            "apps",
            "v1",
            "replicasets",
            json!({"spec": {"template": {"spec": spec}}}),
        ),
        "Job" => (
            "batch",
            "v1",
            "jobs",
            json!({"spec": {"template": {"spec": spec}}}),
        ),
        "CronJob" => (
            "batch",
            "v1",
            "cronjobs",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
        ),
        other => panic!("{other}"),
    };
    let mut object = object;
    object["apiVersion"] = json!(if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    });
    object["kind"] = json!(kind);
    object["metadata"] = json!({"name": "app", "namespace": namespace});
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": "app",
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "dev@example.com", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
    })
}

fn toolchain_image() -> gantry_testkit::BuiltImage {
    ImageBuilder::new()
        .annotation("org.opencontainers.image.base.name", PINNED_BASE)
        .user("65534")
        .layer(passwd_layer())
        .layer(
            LayerBuilder::new(Compression::Gzip)
                .file_mode("usr/bin/gcc-12", b"\x7fELF gcc", 0o755)
                .symlink("usr/bin/gcc", "gcc-12")
                .file_mode("usr/bin/make", b"\x7fELF make", 0o755),
        )
        .build()
        .unwrap()
}

fn unpinned_image() -> gantry_testkit::BuiltImage {
    ImageBuilder::new()
        .annotation(
            "org.opencontainers.image.base.name",
            "docker.io/library/debian:bookworm",
        )
        .user("65534")
        .layer(passwd_layer())
        .build()
        .unwrap()
}

fn violations(response: &Value) -> String {
    response["status"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn every_workload_kind_is_judged_over_https() {
    let registry = RegistryHarness::start().unwrap();
    let host = registry.host();
    good_image("adm-good")
        .push(&registry, "adm/good", Some("v1"), None)
        .unwrap();
    root_image("adm-root")
        .push(&registry, "adm/root", Some("v1"), None)
        .unwrap();
    toolchain_image()
        .push(&registry, "adm/tool", Some("v1"), None)
        .unwrap();
    unpinned_image()
        .push(&registry, "adm/unpinned", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let cluster = start(home.path(), "");
    let good = format!("{host}/adm/good:v1");

    // The first review scans the image on demand, within the API server's timeout.
    let r = cluster.review("10s", &review("uid-first", "Pod", "apps", &[&good]));
    assert_eq!(r["allowed"], true, "{r}");
    // Every pod-template kind, answered from the stored verdict.
    for kind in [
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "ReplicationController",
    ] {
        let r = cluster.review(
            "10s",
            &review(&format!("uid-{kind}"), kind, "apps", &[&good]),
        );
        assert_eq!(r["allowed"], true, "{kind}: {r}");
        assert_eq!(r["auditAnnotations"]["decision"], "allow", "{kind}: {r}");
    }
    // Root, toolchain, unpinned: denied, naming the image, where it is used and the rule.
    for (repo, code) in [
        ("adm/root", "root-user"),
        ("adm/tool", "toolchain"),
        ("adm/unpinned", "unpinned-base"),
    ] {
        let image = format!("{host}/{repo}:v1");
        let r = cluster.review(
            "10s",
            &review(
                &format!("uid-{repo}"),
                "Deployment",
                "apps",
                &[&good, &image],
            ),
        );
        assert_eq!(r["allowed"], false, "{r}");
        assert_eq!(r["status"]["code"], 403, "{r}");
        let message = violations(&r);
        assert!(
            message.contains("gantry denied 1 of 2 image(s)"),
            "{message}"
        );
        assert!(
            message.contains(&format!("container c1: {image}")),
            "{message}"
        );
        assert!(message.contains(code), "{code}: {message}");
        assert_eq!(r["auditAnnotations"]["decision"], "deny");
    }
    let m = cluster.serve.metrics();
    assert_eq!(
        metric(&m, "gantry_scan_duration_seconds_count{outcome=\"ok\"}"),
        4.0,
        "{m}"
    );
    assert!(
        metric(&m, "gantry_admission_requests_total{decision=\"deny\"}") >= 3.0,
        "{m}"
    );
    assert!(
        metric(&m, "gantry_admission_requests_total{decision=\"allow\"}") >= 9.0,
        "{m}"
    );
}

#[test]
fn modes_exemptions_and_a_full_api_server_request() {
    let registry = RegistryHarness::start().unwrap();
    let host = registry.host();
    root_image("modes")
        .push(&registry, "modes/root", Some("v1"), None)
        .unwrap();
    let root = format!("{host}/modes/root:v1");
    let home = tempfile::tempdir().unwrap();
    let cluster = start(
        home.path(),
        &format!(
            r#"
[admission]
exempt_namespaces = ["kube-system", "infra"]
[[admission.namespaces]]
name = "legacy"
mode = "warn"
[[admission.exemptions]]
image = "{host}/modes/root:*"
namespace = "vendor"
reason = "vendor agent, OPS-1234"
expires = "2999-01-01"
[[admission.exemptions]]
image = "{host}/modes/**"
expires = "2001-01-01"
[[admission.exemptions]]
image = "docker.io/gantry-fixture/*"
expires = "2999-12-31"
"#
        ),
    );
    // Enforced by default.
    assert_eq!(
        cluster.review("10s", &review("u1", "Pod", "apps", &[&root]))["allowed"],
        false
    );
    // Warn mode in one namespace: admitted, the denial becomes a warning.
    let r = cluster.review("10s", &review("u2", "Pod", "legacy", &[&root]));
    assert_eq!(r["allowed"], true, "{r}");
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("would deny") && warnings.contains("root-user"),
        "{r}"
    );
    assert_eq!(
        r["auditAnnotations"]["decision"],
        "deny (warn mode: admitted)"
    );
    // Exempt namespaces are not judged at all.
    let r = cluster.review("10s", &review("u3", "Pod", "infra", &[&root]));
    assert_eq!(r["allowed"], true);
    assert_eq!(r["auditAnnotations"]["decision"], "exempt: namespace infra");
    assert_eq!(
        cluster.review(
            "10s",
            &review("u4", "Pod", "kube-system", &["nonexistent.invalid/x"])
        )["allowed"],
        true
    );
    // An image exemption scoped to a namespace, with its reason; the expired one does nothing.
    let r = cluster.review("10s", &review("u5", "Pod", "vendor", &[&root]));
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r["warnings"].to_string().contains("OPS-1234"), "{r}");

    // A full review as the API server sends it (written from the admission.k8s.io/v1 API,
    // tests/fixtures/admission/README.md): parsed, answered with its uid (its short image name
    // normalises to docker.io and is exempted here, so nothing leaves the machine), then the
    // same request naming a local image.
    let full: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/admission/admissionreview-pod-create.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let r = cluster.review("10s", &full);
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("exempted by docker.io/gantry-fixture/*"),
        "{r}"
    );
    let mut local = full.clone();
    local["request"]["object"]["spec"]["containers"][0]["image"] = json!(root);
    let r = cluster.review("10s", &local);
    assert_eq!(r["allowed"], false, "{r}");
    assert!(violations(&r).contains("root-user"), "{r}");
}

#[test]
fn a_slow_registry_gets_the_failure_mode_in_time_and_the_scan_goes_on() {
    let registry = RegistryHarness::start().unwrap();
    let pushed = good_image("slow")
        .push(&registry, "slow/app", Some("v1"), None)
        .unwrap();
    let other = good_image("slow-open")
        .push(&registry, "slow/open", Some("v1"), None)
        .unwrap();
    let proxy = HoldingProxy::start(registry.addr(), true).unwrap();
    let image = format!("{}/slow/app:v1", proxy.host());

    let home = tempfile::tempdir().unwrap();
    let closed = start(home.path(), "[admission]\nsafety_margin = \"1s\"\n");
    let started = Instant::now();
    let r = closed.review("3s", &review("slow-1", "Pod", "apps", &[&image]));
    let took = started.elapsed();
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        violations(&r).contains("no verdict within the time limit"),
        "{r}"
    );
    assert!(
        took < Duration::from_secs(3),
        "answered after {took:?}, past the API server's timeout"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "gave up early: {took:?}"
    );
    // The scan went on: once the registry answers, the next review is served from the store.
    proxy.release();
    closed.serve.verdict(&pushed.digest.to_string());
    let started = Instant::now();
    let r = closed.review("3s", &review("slow-2", "Pod", "apps", &[&image]));
    assert_eq!(r["allowed"], true, "{r}");
    assert!(started.elapsed() < Duration::from_secs(1));

    // Fail open: admitted with a warning.
    proxy.hold();
    let home = tempfile::tempdir().unwrap();
    let open = start(
        home.path(),
        "[admission]\nsafety_margin = \"1s\"\nfailure_mode = \"open\"\n",
    );
    let r = open.review(
        "2s",
        &review(
            "slow-3",
            "Pod",
            "apps",
            &[&format!("{}/slow/open@{}", proxy.host(), other.digest)],
        ),
    );
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("no verdict within the time limit"),
        "{r}"
    );
    proxy.release();
}

#[test]
fn concurrent_reviews_of_a_new_image_share_one_scan() {
    let registry = RegistryHarness::start().unwrap();
    let image = format!("{}/many/app:v1", registry.host());
    root_image("many")
        .push(&registry, "many/app", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let cluster = Arc::new(start(home.path(), ""));
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let (cluster, image) = (Arc::clone(&cluster), image.clone());
            std::thread::spawn(move || {
                cluster.review("10s", &review(&format!("c{i}"), "Pod", "apps", &[&image]))
            })
        })
        .collect();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r["allowed"], false, "{r}");
    }
    assert_eq!(
        cluster
            .serve
            .metric("gantry_scan_duration_seconds_count{outcome=\"ok\"}"),
        1.0
    );
}

#[test]
fn bad_reviews_get_a_well_formed_answer_or_a_400() {
    let registry = RegistryHarness::start().unwrap();
    let good = good_image("bad")
        .push(&registry, "bad/good", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let cluster = start(home.path(), "");
    for (body, code) in [
        ("{not json".to_string(), "invalid-review"),
        (json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}).to_string(), "unsupported-review"),
        (json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).to_string(), "invalid-review"),
        (json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"kind": {"group": "", "version": "v1", "kind": "Pod"}}}).to_string(), "invalid-review"),
    ] {
        let (status, answer) = cluster.post("/admission", body.as_bytes());
        assert_eq!(status, 400, "{body}: {answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {answer}");
    }
    // A body over the cap.
    let huge = review("huge", "Pod", "apps", &[&"x".repeat(8 * 1024 * 1024)]);
    let (status, answer) = cluster.post("/admission", huge.to_string().as_bytes());
    assert_eq!(status, 413);
    assert!(answer.contains("body-too-large"), "{answer}");
    // Reviews with a uid always get a review back: a kind Gantry does not judge is allowed,
    // an invalid pod spec or image reference is denied (fail closed).
    let mut svc = review("svc", "Pod", "apps", &[]);
    svc["request"]["kind"]["kind"] = json!("Service");
    let r = cluster.review("10s", &svc);
    assert_eq!(r["allowed"], true, "{r}");
    let mut broken = review("broken", "Pod", "apps", &[]);
    broken["request"]["object"]["spec"] = json!({"containers": "nope"});
    let r = cluster.review("10s", &broken);
    assert_eq!(r["allowed"], false, "{r}");
    let r = cluster.review("10s", &review("badref", "Pod", "apps", &["UPPER/Case::x"]));
    assert_eq!(r["allowed"], false, "{r}");
    assert!(violations(&r).contains("invalid image reference"), "{r}");
    let r = cluster.review(
        "10s",
        &review(
            "missing",
            "Pod",
            "apps",
            &[&format!("{}/bad/missing:v1", registry.host())],
        ),
    );
    assert_eq!(r["allowed"], false, "{r}");
    // By digest, with a giant number of containers naming it: one lookup, one verdict.
    let many: Vec<String> = (0..300)
        .map(|_| format!("{}/bad/good@{}", registry.host(), good.digest))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let r = cluster.review("10s", &review("many", "Pod", "apps", &refs));
    assert_eq!(r["allowed"], true, "{r}");
    // Plain HTTP to the TLS port is refused without harm.
    let mut tcp = TcpStream::connect(cluster.serve.admission.unwrap()).unwrap();
    let _ = tcp.write_all(b"POST /admission HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}");
    let mut sink = Vec::new();
    let _ = tcp.read_to_end(&mut sink);
    assert_eq!(codes(&json!([])).len(), 0);
    assert!(!cluster.serve.log().contains("panicked"));
    assert_eq!(get_status(cluster.serve.admin, "/readyz"), 200);
}

fn get_status(addr: SocketAddr, path: &str) -> u16 {
    crate::serve::get(addr, path).status
}

#[test]
fn a_rotated_certificate_is_served_without_restart() {
    let registry = RegistryHarness::start().unwrap();
    good_image("rot")
        .push(&registry, "rot/app", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut cluster = start(home.path(), "");
    let image = format!("{}/rot/app:v1", registry.host());
    assert_eq!(
        cluster.review("10s", &review("r1", "Pod", "apps", &[&image]))["allowed"],
        true
    );
    let old = cluster.ca.clone();
    let new = write_cert(home.path());
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let body = review("r2", "Pod", "apps", &[&image]).to_string();
        if https_post(
            cluster.serve.admission.unwrap(),
            &new,
            cluster.client.as_ref(),
            "/admission",
            body.as_bytes(),
        )
        .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "new certificate never served:\n{}",
            cluster.serve.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        https_post(
            cluster.serve.admission.unwrap(),
            &old,
            cluster.client.as_ref(),
            "/admission",
            b"{}"
        )
        .is_err(),
        "old certificate still served"
    );
    cluster.ca = new;
    assert_eq!(
        cluster.review("10s", &review("r3", "Pod", "apps", &[&image]))["allowed"],
        true
    );
    assert!(
        cluster
            .serve
            .log()
            .contains("admission certificate reloaded")
    );
}

/// A stand-in for the Kubernetes API (no API server can run here): HTTPS on loopback, serving
/// one Secret to the holder of one token, 403 to anyone else — the in-cluster calls Gantry makes.
fn kube_api(dir: &Path, namespace: &str, name: &str, secret: Value, token: &str) -> SocketAddr {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.join("kube-ca.crt"), c.cert.pem()).unwrap();
    std::fs::write(dir.join("kube-token"), format!("{token}\n")).unwrap();
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(c.signing_key.serialize_pem().as_bytes())
            .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![c.cert.der().clone()], key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let path = format!("/api/v1/namespaces/{namespace}/secrets/{name}");
    let (token, body) = (token.to_string(), secret.to_string());
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if tls.read_exact(&mut byte).is_err() {
                    break;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let authorized = head
                .to_ascii_lowercase()
                .contains(&format!("authorization: bearer {token}"));
            let (status, answer) = if !authorized {
                ("403 Forbidden", "{}".to_string())
            } else if head.starts_with(&format!("GET {path} ")) {
                ("200 OK", body.clone())
            } else {
                ("404 Not Found", "{}".to_string())
            };
            let _ = write!(
                tls,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    addr
}

/// A private registry: the pod's imagePullSecret (read from the Kubernetes API with Gantry's
/// service account token) lets Gantry pull and judge the image; without it, no verdict.
#[test]
fn image_pull_secrets_open_private_registries() {
    use base64::Engine as _;
    let registry =
        RegistryHarness::start_with(gantry_testkit::Auth::basic("puller", "pull-pass")).unwrap();
    good_image("private")
        .push(
            &registry,
            "private/app",
            Some("v1"),
            Some(("puller", "pull-pass")),
        )
        .unwrap();
    let image = format!("{}/private/app:v1", registry.host());
    let home = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("puller:pull-pass");
    let config = json!({"auths": {registry.host(): {"auth": auth}}}).to_string();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "apps"},
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config)},
    });
    let api = kube_api(home.path(), "apps", "regcred", secret, "sa-token");
    let setup = ServeSetup::new(home.path())
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &api.port().to_string())
        .env(
            "GANTRY_KUBE_TOKEN_FILE",
            &home.path().join("kube-token").display().to_string(),
        )
        .env(
            "GANTRY_KUBE_CA_FILE",
            &home.path().join("kube-ca.crt").display().to_string(),
        );
    let cluster = start_with(home.path(), setup);

    // Without the pull secret: the registry refuses Gantry, and fail-closed denies.
    let r = cluster.review("10s", &review("nosecret", "Pod", "apps", &[&image]));
    assert_eq!(r["allowed"], false, "{r}");
    assert!(violations(&r).contains("cannot be judged"), "{r}");

    let mut with = review("secret", "Deployment", "apps", &[&image]);
    with["request"]["object"]["spec"]["template"]["spec"]["imagePullSecrets"] =
        json!([{"name": "regcred"}]);
    let r = cluster.review("10s", &with);
    assert_eq!(r["allowed"], true, "{r}\n{}", cluster.serve.log());
    // The credentials are the namespace's: a pod without the secret — in the same namespace
    // or naming a secret that does not exist — and a pod of another namespace naming the
    // secret (Gantry may not read it there) are not judged with them, nor shown the verdict
    // made with them.
    let mut other = review("other", "Pod", "apps", &[&image]);
    other["request"]["object"]["spec"]["imagePullSecrets"] = json!([{"name": "nope"}]);
    let r = cluster.review("10s", &other);
    assert_eq!(r["allowed"], false, "{r}");
    assert!(violations(&r).contains("cannot be judged"), "{r}");
    let r = cluster.review("10s", &review("bare", "Pod", "apps", &[&image]));
    assert_eq!(r["allowed"], false, "{r}");
    let mut attacker = review("attacker", "Pod", "attacker", &[&image]);
    attacker["request"]["object"]["spec"]["imagePullSecrets"] = json!([{"name": "regcred"}]);
    let r = cluster.review("10s", &attacker);
    assert_eq!(r["allowed"], false, "{r}");
    assert!(violations(&r).contains("cannot be judged"), "{r}");
    // The operator (anonymous on this loopback API) sees the namespace's image; a team's
    // reader token is tested in tests/serve.rs.
    let listed = crate::serve::get(
        cluster.serve.api,
        &format!("/v1/images?repository={}/private/app", registry.host()),
    );
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("sha256:"), "{}", listed.body);
}

/// A review from a client other than the API server is refused at the TLS handshake: no
/// certificate, one another CA signed, or one of the right CA for another name.
#[test]
fn only_the_api_server_may_send_reviews() {
    let registry = RegistryHarness::start().unwrap();
    good_image("who")
        .push(&registry, "who/app", Some("v1"), None)
        .unwrap();
    let image = format!("{}/who/app:v1", registry.host());
    let home = tempfile::tempdir().unwrap();
    let ca = write_cert(home.path());
    let mut clients = write_client_pki(home.path(), &["kube-apiserver", "some-pod"]);
    let serve = ServeSetup::new(home.path())
        .config("[admission]\nclient_names = [\"kube-apiserver\"]\n")
        .arg("--admission-listen")
        .arg("127.0.0.1:0")
        .arg("--tls-cert")
        .arg(&home.path().join("tls.crt").display().to_string())
        .arg("--tls-key")
        .arg(&home.path().join("tls.key").display().to_string())
        .arg("--admission-client-ca")
        .arg(&home.path().join("apiserver-ca.crt").display().to_string())
        .start();
    let wrong_name = clients.remove(1);
    let cluster = Cluster {
        serve,
        ca,
        client: Some(clients.remove(0)),
    };
    assert_eq!(
        cluster.review("10s", &review("ok", "Pod", "apps", &[&image]))["allowed"],
        true
    );
    let body = review("forged", "Pod", "apps", &[&image]).to_string();
    let addr = cluster.serve.admission.unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = write_client_pki(elsewhere.path(), &["kube-apiserver"]).remove(0);
    for (who, client) in [
        ("no certificate", None),
        ("another CA", Some(&stranger)),
        ("another name", Some(&wrong_name)),
    ] {
        assert!(
            https_post(addr, &cluster.ca, client, "/admission", body.as_bytes()).is_err(),
            "{who}: served"
        );
    }
}

/// Where the API server cannot present a certificate, reviews may be taken from anyone — on
/// purpose — and then a review's pull secrets are never read.
#[test]
fn unauthenticated_clients_are_not_trusted_with_pull_secrets() {
    use base64::Engine as _;
    let registry =
        RegistryHarness::start_with(gantry_testkit::Auth::basic("puller", "pull-pass")).unwrap();
    good_image("untrusted")
        .push(
            &registry,
            "private/app",
            Some("v1"),
            Some(("puller", "pull-pass")),
        )
        .unwrap();
    let image = format!("{}/private/app:v1", registry.host());
    let home = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("puller:pull-pass");
    let config = json!({"auths": {registry.host(): {"auth": auth}}}).to_string();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "apps"},
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config)},
    });
    let api = kube_api(home.path(), "apps", "regcred", secret, "sa-token");
    let ca = write_cert(home.path());
    let serve = ServeSetup::new(home.path())
        .config("[admission]\nallow_unauthenticated_clients = true\n")
        .arg("--admission-listen")
        .arg("127.0.0.1:0")
        .arg("--tls-cert")
        .arg(&home.path().join("tls.crt").display().to_string())
        .arg("--tls-key")
        .arg(&home.path().join("tls.key").display().to_string())
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &api.port().to_string())
        .env(
            "GANTRY_KUBE_TOKEN_FILE",
            &home.path().join("kube-token").display().to_string(),
        )
        .env(
            "GANTRY_KUBE_CA_FILE",
            &home.path().join("kube-ca.crt").display().to_string(),
        )
        .start();
    let cluster = Cluster {
        serve,
        ca,
        client: None,
    };
    let mut with = review("secret", "Pod", "apps", &[&image]);
    with["request"]["object"]["spec"]["imagePullSecrets"] = json!([{"name": "regcred"}]);
    let r = cluster.review("10s", &with);
    assert_eq!(r["allowed"], false, "{r}");
    assert!(violations(&r).contains("cannot be judged"), "{r}");
    assert!(
        cluster
            .serve
            .log()
            .contains("pods' imagePullSecrets are not read")
    );
}

/// A multi-platform image is judged on every platform a pod may run: one denied platform
/// denies the pod (naming it), unless the pod's node selection rules that platform out.
#[test]
fn every_platform_of_an_index_is_judged() {
    use crate::serve::{arch, good_builder, root_builder};
    let registry = RegistryHarness::start().unwrap();
    let index = gantry_testkit::IndexBuilder::new()
        .image(
            good_builder("mp-amd64")
                .platform(arch("amd64"))
                .build()
                .unwrap(),
        )
        .image(
            root_builder("mp-arm64")
                .platform(arch("arm64"))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    index
        .push(&registry, "multi/app", Some("v1"), None)
        .unwrap();
    let image = format!("{}/multi/app:v1", registry.host());
    let home = tempfile::tempdir().unwrap();
    let cluster = start(home.path(), "");

    // Anywhere: the arm64 image runs as root, so the pod is denied, and the message says where.
    let r = cluster.review("10s", &review("any", "Pod", "apps", &[&image]));
    assert_eq!(r["allowed"], false, "{r}");
    let message = violations(&r);
    assert!(
        message.contains("linux/arm64") && message.contains("root-user"),
        "{message}"
    );
    assert!(!message.contains("linux/amd64"), "{message}");
    let images = r["auditAnnotations"]["images"].as_str().unwrap_or("");
    assert!(
        images.contains("[linux/amd64]=allow") && images.contains("[linux/arm64]=deny"),
        "{images}"
    );

    // Pinned to amd64 nodes: only the amd64 image counts.
    let mut amd64 = review("amd64", "Pod", "apps", &[&image]);
    amd64["request"]["object"]["spec"]["nodeSelector"] = json!({"kubernetes.io/arch": "amd64"});
    assert_eq!(cluster.review("10s", &amd64)["allowed"], true);
    let mut arm64 = review("arm64", "Deployment", "apps", &[&image]);
    arm64["request"]["object"]["spec"]["template"]["spec"]["nodeSelector"] =
        json!({"kubernetes.io/arch": "arm64"});
    assert_eq!(cluster.review("10s", &arm64)["allowed"], false);

    // The configured platforms narrow what is judged (a cluster of amd64 nodes only).
    let home = tempfile::tempdir().unwrap();
    let narrow = start(home.path(), "[admission]\nplatforms = [\"linux/amd64\"]\n");
    assert_eq!(
        narrow.review("10s", &review("narrow", "Pod", "apps", &[&image]))["allowed"],
        true
    );
}

/// `?timeout=` is clamped to the 30 s an API server may send: a huge value neither panics
/// (it overflowed a time addition) nor holds the request open.
#[test]
fn hostile_timeouts_are_answered_in_time() {
    let registry = RegistryHarness::start().unwrap();
    good_image("slow-t")
        .push(&registry, "slow/t", Some("v1"), None)
        .unwrap();
    let proxy = HoldingProxy::start(registry.addr(), true).unwrap();
    let image = format!("{}/slow/t:v1", proxy.host());
    let home = tempfile::tempdir().unwrap();
    let cluster = start(home.path(), "[admission]\nsafety_margin = \"1s\"\n");
    for (i, timeout) in ["18446744073709551615s", "100000h"].iter().enumerate() {
        let started = Instant::now();
        let r = cluster.review(timeout, &review(&format!("t{i}"), "Pod", "apps", &[&image]));
        assert_eq!(r["allowed"], false, "{r}");
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{timeout}: {:?}",
            started.elapsed()
        );
    }
    assert!(!cluster.serve.log().contains("panicked"));
}

/// A review cannot be used to scan ports: a closed port and a port where something other
/// than a registry answers give the same message (the precise error goes to the log).
#[test]
fn registry_failures_do_not_say_what_answered() {
    let home = tempfile::tempdir().unwrap();
    let cluster = start(home.path(), "");
    let listening = cluster.serve.admin; // answers HTTP, but is no registry
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let message = |uid: &str, addr: SocketAddr| {
        let r = cluster.review(
            "10s",
            &review(uid, "Pod", "apps", &[&format!("{addr}/probe/x:1")]),
        );
        assert_eq!(r["allowed"], false, "{r}");
        violations(&r).replace(&addr.to_string(), "ADDR")
    };
    let a = message("closed", closed);
    let b = message("listening", listening);
    assert!(a.contains("registry-unavailable"), "{a}");
    assert_eq!(a, b);
    for revealing in ["connect", "refused", "protocol", "json", "404"] {
        assert!(!a.to_lowercase().contains(revealing), "{revealing}: {a}");
    }
}

/// Copies the built-in bundle to `dir` and adds a rule that names the mode it was judged in:
/// a warning `mode-<context.mode>`.
fn bundle_that_names_the_mode(dir: &Path) -> std::path::PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let bundle = dir.join("policies");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &bundle,
    );
    std::fs::write(
        bundle.join("gantry/rules/mode.rego"),
        "package gantry.rules.mode\n\nimport rego.v1\n\n\
         warn contains {\"code\": sprintf(\"mode-%s\", [input.context.mode]), \
         \"message\": \"judged for this kind of caller\", \"location\": {\"field\": \"context.mode\"}}\n",
    )
    .unwrap();
    bundle
}

/// The findings of a verdict, without the mode warning: what must agree across entry points.
fn judgement(verdict: &Value) -> (String, Vec<String>, Vec<String>) {
    let warnings = codes(&verdict["warnings"])
        .into_iter()
        .filter(|c| !c.starts_with("mode-"))
        .collect();
    (
        verdict["decision"].as_str().unwrap().to_string(),
        codes(&verdict["violations"]),
        warnings,
    )
}

fn mode_of(verdict: &Value) -> Vec<String> {
    codes(&verdict["warnings"])
        .into_iter()
        .filter(|c| c.starts_with("mode-"))
        .collect()
}

/// One judgement, four entry points (issue 14): the CLI, a registry webhook, `POST /v1/scan`
/// and an admission review judge the same image through the same gate and agree, and each
/// records its own mode — a policy can tell admission from a registry push (admission used to
/// be judged as `webhook`, and `api` was missing from the input schema).
#[test]
fn every_entry_point_judges_alike_and_records_its_mode() {
    let registry = RegistryHarness::start().unwrap();
    let host = registry.host();
    let pushed = root_image("modes")
        .push(&registry, "modes/app", Some("v1"), None)
        .unwrap();
    let image = format!("{host}/modes/app:v1");
    let home = tempfile::tempdir().unwrap();
    let bundle = bundle_that_names_the_mode(home.path());
    let policy = bundle.display().to_string();

    // The CLI.
    let cache = tempfile::tempdir().unwrap();
    let out = crate::util::gantry(
        cache.path(),
        &["scan", &image, "--policy", &policy, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", crate::util::stdout(&out));
    let cli: Value = serde_json::from_str(&crate::util::stdout(&out)).unwrap();
    let cli = cli["verdict"].clone();
    assert_eq!(mode_of(&cli), ["mode-cli"], "{cli}");
    assert_eq!(cli["decision"], "deny");
    assert!(codes(&cli["violations"]).contains(&"root-user".to_string()));

    let cluster = start(home.path(), &format!("policy = {policy:?}\n"));
    let serve = &cluster.serve;
    let stored = |mode: &str| {
        let path = format!(
            "/v1/images/{}/verdict?reference={image}&mode={mode}",
            pushed.digest
        );
        serve.wait_for(
            &format!("the {mode} verdict"),
            Duration::from_secs(30),
            || {
                let r = serve.get(&path);
                (r.status == 200).then(|| r.json()["verdict"].clone())
            },
        )
    };

    // A registry push.
    let event = json!({"events": [crate::serve::distribution_event("modes-1", &host, "modes/app", "v1", &pushed)]});
    let r = crate::serve::post(
        serve.api,
        "/webhooks/distribution",
        &[("content-type", crate::serve::DISTRIBUTION_CT)],
        event.to_string().as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    serve.wait_for("the pushed image judged", Duration::from_secs(30), || {
        (serve.metric("gantry_jobs{status=\"done\"}") >= 1.0).then_some(())
    });
    let webhook = stored("webhook");
    assert_eq!(mode_of(&webhook), ["mode-webhook"], "{webhook}");

    // The API.
    let r = serve.post_json("/v1/scan", &json!({"image": image}));
    assert_eq!(r.status, 200, "{}", r.body);
    let api = r.json()["verdict"].clone();
    assert_eq!(mode_of(&api), ["mode-api"], "{api}");
    assert_eq!(mode_of(&stored("api")), ["mode-api"]);

    // An admission review.
    let answer = cluster.review("10s", &review("uid-modes", "Pod", "apps", &[&image]));
    assert_eq!(answer["allowed"], false, "{answer}");
    let admission = stored("admission");
    assert_eq!(mode_of(&admission), ["mode-admission"], "{admission}");

    for (entry, verdict) in [("webhook", &webhook), ("api", &api)] {
        assert_eq!(
            judgement(verdict),
            judgement(&cli),
            "{entry} disagrees with the CLI"
        );
    }
    // The built-in bundle itself tells admission apart: Kubernetes ignores HEALTHCHECK, so
    // `no-healthcheck` is not reported to it. Everything else agrees.
    let (decision, violations, mut warnings) = judgement(&cli);
    assert!(warnings.contains(&"no-healthcheck".to_string()), "{cli}");
    warnings.retain(|c| c != "no-healthcheck");
    assert_eq!(judgement(&admission), (decision, violations, warnings));
}
