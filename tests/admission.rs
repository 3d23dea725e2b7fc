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

/// POSTs `body` to `https://addr/admission{query}`, trusting only `ca_pem`. Returns status and
/// body.
fn https_post(
    addr: SocketAddr,
    ca_pem: &str,
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
    .with_root_certificates(roots)
    .with_no_client_auth();
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
        https_post(self.serve.admission.unwrap(), &self.ca, path, body)
            .unwrap_or_else(|e| panic!("HTTPS POST {path}: {e}\n{}", self.serve.log()))
    }
}

fn start(home: &Path, config: &str) -> Cluster {
    let ca = write_cert(home);
    let serve = ServeSetup::new(home)
        .config(config)
        .arg("--admission-listen")
        .arg("127.0.0.1:0")
        .arg("--tls-cert")
        .arg(&home.join("tls.crt").display().to_string())
        .arg("--tls-key")
        .arg(&home.join("tls.key").display().to_string())
        .start();
    assert!(
        serve.admission.is_some(),
        "no admission listener:\n{}",
        serve.log()
    );
    Cluster { serve, ca }
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
        https_post(cluster.serve.admission.unwrap(), &old, "/admission", b"{}").is_err(),
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
    let ca = write_cert(home.path());
    let serve = ServeSetup::new(home.path())
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
    let cluster = Cluster { serve, ca };

    // Without the pull secret: the registry refuses Gantry, and fail-closed denies.
    let r = cluster.review("10s", &review("nosecret", "Pod", "apps", &[&image]));
    assert_eq!(r["allowed"], false, "{r}");
    assert!(violations(&r).contains("cannot be judged"), "{r}");

    let mut with = review("secret", "Deployment", "apps", &[&image]);
    with["request"]["object"]["spec"]["template"]["spec"]["imagePullSecrets"] =
        json!([{"name": "regcred"}]);
    let r = cluster.review("10s", &with);
    assert_eq!(r["allowed"], true, "{r}\n{}", cluster.serve.log());
    // A secret that does not exist (or may not be read) changes nothing.
    let mut other = review("other", "Pod", "apps", &[&image]);
    other["request"]["object"]["spec"]["imagePullSecrets"] = json!([{"name": "nope"}]);
    assert_eq!(cluster.review("10s", &other)["allowed"], true);
}
