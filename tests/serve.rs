//! `gantry serve` end to end: the real binary, a real Debian registry sending real
//! notifications, a real SQLite file (and a real Postgres for replicas), HTTP over loopback.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gantry_model::Platform;
use gantry_model::oci::Compression;
use gantry_testkit::{
    Artifact, BuiltImage, HoldingProxy, ImageBuilder, IndexBuilder, LayerBuilder, PostgresHarness,
    Pushed, RegistryHarness, RegistryOptions,
};
use serde_json::{Value, json};

pub(crate) const PINNED_BASE: &str = "gcr.io/distroless/static-debian12:nonroot@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub(crate) const DISTRIBUTION_CT: &str = "application/vnd.docker.distribution.events.v2+json";

// ---- images ----

pub(crate) fn passwd_layer() -> LayerBuilder {
    LayerBuilder::new(Compression::Gzip)
        .dir("etc")
        .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
        .file("etc/group", "root:x:0:\nnogroup:x:65534:\n")
}

/// Passes every built-in check: pinned base, numeric non-root user, one static binary.
pub(crate) fn good_image(marker: &str) -> BuiltImage {
    good_builder(marker).build().unwrap()
}

pub(crate) fn good_builder(marker: &str) -> ImageBuilder {
    ImageBuilder::new()
        .annotation("org.opencontainers.image.base.name", PINNED_BASE)
        .user("65534:65534")
        .layer(passwd_layer())
        .layer(LayerBuilder::new(Compression::Zstd).file_owned(
            "app/server",
            format!("\x7fELF static {marker}"),
            0o755,
            65534,
            65534,
        ))
        .entrypoint(["/app/server"])
}

/// Fails only `root-user`: pinned, no toolchain, but USER root.
pub(crate) fn root_image(marker: &str) -> BuiltImage {
    root_builder(marker).build().unwrap()
}

pub(crate) fn root_builder(marker: &str) -> ImageBuilder {
    ImageBuilder::new()
        .annotation("org.opencontainers.image.base.name", PINNED_BASE)
        .user("root")
        .layer(passwd_layer())
        .layer(LayerBuilder::new(Compression::Gzip).file_mode(
            "app/run",
            format!("\x7fELF run {marker}"),
            0o755,
        ))
}

pub(crate) fn arch(arch: &str) -> Platform {
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: None,
    }
}

// ---- the service under test ----

/// A running `gantry serve`; SIGKILLed when dropped.
pub(crate) struct Serve {
    child: Child,
    pub(crate) api: SocketAddr,
    pub(crate) admin: SocketAddr,
    /// The HTTPS admission listener, when TLS was configured.
    pub(crate) admission: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
}

pub(crate) struct ServeSetup<'a> {
    home: &'a Path,
    data_dir: PathBuf,
    config: Option<String>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl<'a> ServeSetup<'a> {
    pub(crate) fn new(home: &'a Path) -> ServeSetup<'a> {
        ServeSetup {
            home,
            data_dir: home.join("data"),
            config: None,
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    pub(crate) fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }

    pub(crate) fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub(crate) fn env(mut self, k: &str, v: &str) -> Self {
        self.envs.push((k.to_string(), v.to_string()));
        self
    }

    pub(crate) fn start(&self) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gantry"));
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env("HOME", self.home)
            .env("GANTRY_LOG", "info,gantry_server=debug")
            .env_remove("DOCKER_CONFIG")
            .env_remove("GANTRY_CONFIG")
            .env_remove("GANTRY_DATABASE_URL")
            .env_remove("GANTRY_POLICY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Tests talk to 127.0.0.1 only: the base images the fixtures name are not fetched.
        let toml = allow_loopback_registries(&self.config.clone().unwrap_or_default());
        let toml = format!("{toml}\n[scan]\nbase_lookup = false\n");
        let path = self.home.join(format!("gantry-{}.toml", toml.len()));
        std::fs::write(&path, toml).unwrap();
        cmd.arg("--config").arg(path);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("gantry serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("gantry serve listening") {
                        let _ = tx.send(line.clone());
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gantry serve did not start:\n{}", log.lock().unwrap());
            }
        };
        let field = |name: &str| -> Option<SocketAddr> {
            let start = line.find(&format!(" {name}="))? + name.len() + 2;
            line[start..].split_whitespace().next()?.parse().ok()
        };
        Serve {
            api: field("api").unwrap(),
            admin: field("admin").unwrap(),
            admission: field("admission"),
            child,
            log,
        }
    }
}

/// The harness registries are on 127.0.0.1, which `gantry serve` refuses unless listed: list
/// it in `[registry] allow` (inside the test's own `[registry]` table when it has one), as a
/// deployment lists its private registries.
pub(crate) fn allow_loopback_registries(toml: &str) -> String {
    const ALLOW: &str = "allow = [\"127.0.0.1\"]";
    if toml.lines().any(|l| l.trim() == "[registry]") {
        toml.lines()
            .flat_map(|l| {
                let extra = (l.trim() == "[registry]").then_some(ALLOW);
                std::iter::once(l).chain(extra)
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        format!("{toml}\n[registry]\n{ALLOW}\n")
    }
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn reply(resp: ureq::http::Response<ureq::Body>) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = String::new();
    resp.into_body()
        .into_reader()
        .read_to_string(&mut body)
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn try_get(base: SocketAddr, path: &str) -> Result<Reply, ureq::Error> {
    agent()
        .get(format!("http://{base}{path}"))
        .call()
        .map(reply)
}

fn try_post(
    base: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, ureq::Error> {
    let mut req = agent().post(format!("http://{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send(body).map(reply)
}

pub(crate) fn get(base: SocketAddr, path: &str) -> Reply {
    try_get(base, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

pub(crate) fn post(base: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    try_post(base, path, headers, body).unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

impl Serve {
    pub(crate) fn get(&self, path: &str) -> Reply {
        try_get(self.api, path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\ngantry log:\n{}", self.log()))
    }

    pub(crate) fn post_json(&self, path: &str, body: &Value) -> Reply {
        let body = body.to_string();
        try_post(
            self.api,
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("POST {path}: {e}\ngantry log:\n{}", self.log()))
    }

    pub(crate) fn metrics(&self) -> String {
        let r = get(self.admin, "/metrics");
        assert_eq!(r.status, 200);
        r.body
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    pub(crate) fn metric(&self, series: &str) -> f64 {
        metric(&self.metrics(), series)
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Polls `f` until it returns Some, failing with the service log after `timeout`.
    pub(crate) fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let end = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > end {
                panic!("timed out waiting for {what}; gantry log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The job, once it is done (its verdict is stored just before the job closes).
    pub(crate) fn job_done(&self, id: i64) -> Value {
        self.wait_for(
            &format!("job {id} to be done"),
            Duration::from_secs(60),
            || {
                let j = self.get(&format!("/v1/jobs/{id}")).json();
                (j["status"] == "done").then_some(j)
            },
        )
    }

    /// Waits until the metric `series` reads `value`.
    pub(crate) fn wait_metric(&self, series: &str, value: f64) {
        self.wait_for(
            &format!("{series} = {value}"),
            Duration::from_secs(60),
            || (self.metric(series) == value).then_some(()),
        );
    }

    /// The stored verdict of `digest`, once there is one.
    pub(crate) fn verdict(&self, digest: &str) -> Value {
        self.wait_for(
            &format!("a verdict for {digest}"),
            Duration::from_secs(60),
            || {
                let r = self.get(&format!("/v1/images/{digest}/verdict"));
                (r.status == 200).then(|| r.json())
            },
        )
    }

    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < end,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

pub(crate) fn codes(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn distribution_event(
    id: &str,
    registry: &str,
    repo: &str,
    tag: &str,
    pushed: &Pushed,
) -> Value {
    json!({
        "id": id,
        "timestamp": "2026-11-22T10:00:00.000000000Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": pushed.digest.to_string(),
            "size": 1234,
            "repository": repo,
            "url": format!("http://{registry}/v2/{repo}/manifests/{}", pushed.digest),
            "tag": tag,
        },
        "request": {"id": "r", "addr": "127.0.0.1:1", "host": registry, "method": "PUT", "useragent": "test"},
        "actor": {},
        "source": {"addr": "x:5000", "instanceID": "i"},
    })
}

// ---- tests ----

/// The issue's main proof: a real registry notifies a real `gantry serve`; verdicts, reports,
/// SBOMs and job states appear through the API; metrics count it all.
#[test]
fn registry_pushes_become_verdicts_and_sboms() {
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config(
            r#"
[workers]
concurrency = 2
[webhooks.distribution.auth]
type = "bearer"
token_env = "TEST_DISTRIBUTION_TOKEN"
"#,
        )
        .env("TEST_DISTRIBUTION_TOKEN", "s3cret-token")
        .start();
    let registry = RegistryHarness::start_with_options(RegistryOptions {
        config_patch: Some(json!({"notifications": {
            "events": {"includereferences": true},
            "endpoints": [{
                "name": "gantry",
                "url": format!("http://{}/webhooks/distribution", serve.api),
                "headers": {"Authorization": ["Bearer s3cret-token"]},
                "timeout": "3s", "threshold": 3, "backoff": "1s",
                "ignore": {"mediatypes": ["application/octet-stream"]},
            }],
        }})),
        ..RegistryOptions::default()
    })
    .unwrap();
    let host = registry.host();

    let good = good_image("good")
        .push(&registry, "team/good", Some("v1"), None)
        .unwrap();
    let root = root_image("root")
        .push(&registry, "team/rooty", Some("v1"), None)
        .unwrap();
    let index = IndexBuilder::new()
        .image(
            good_builder("amd64")
                .platform(arch("amd64"))
                .build()
                .unwrap(),
        )
        .image(
            root_builder("arm64")
                .platform(arch("arm64"))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let children: Vec<String> = index
        .children()
        .map(|c| c.manifest_digest.to_string())
        .collect();
    let index_pushed = index
        .push(&registry, "team/multi", Some("v2"), None)
        .unwrap();

    // The good image: allow, with its SBOM and report.
    let v = serve.verdict(&good.digest.to_string());
    assert_eq!(v["decision"], "allow", "{v}");
    assert_eq!(v["repository"], format!("{host}/team/good"));
    assert_eq!(v["tags"], json!(["v1"]));
    let sbom = serve.get(&format!("/v1/images/{}/sbom", good.digest));
    assert_eq!(sbom.status, 200);
    assert!(
        sbom.header("content-type")
            .unwrap()
            .starts_with("application/vnd.cyclonedx+json")
    );
    let sbom = sbom.json();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.6");
    let report = serve
        .get(&format!("/v1/images/{}/report", good.digest))
        .json();
    assert_eq!(report["image"]["digest"], good.digest.to_string());
    assert_eq!(report["context"]["mode"], "webhook");

    // The root image: deny, naming the rule.
    let v = serve.verdict(&root.digest.to_string());
    assert_eq!(v["decision"], "deny", "{v}");
    assert!(
        codes(&v["verdict"]["violations"]).contains(&"root-user".to_string()),
        "{v}"
    );

    // The index: one verdict per platform image, the tag recorded for each.
    let decisions: BTreeSet<String> = children
        .iter()
        .map(|d| serve.verdict(d)["decision"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        decisions,
        BTreeSet::from(["allow".to_string(), "deny".to_string()])
    );
    let listed = serve
        .get(&format!("/v1/images?repository={host}/team/multi"))
        .json();
    let listed_digests: BTreeSet<&str> = listed["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["manifest_digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed_digests,
        children.iter().map(String::as_str).collect()
    );

    // Jobs: done, each digest scanned once (pulls by gantry itself come back as pull events,
    // which are skipped).
    serve.job_done(1);
    // The index's own job points at no verdict (its platform images have theirs).
    let index_job = (1..20)
        .map(|id| serve.get(&format!("/v1/jobs/{id}")))
        .filter(|r| r.status == 200)
        .map(|r| r.json())
        .find(|j| j["digest"] == index_pushed.digest.to_string())
        .unwrap();
    let index_job = serve.job_done(index_job["id"].as_i64().unwrap());
    assert!(index_job["verdict_url"].is_null(), "{index_job}");
    // The index job closes after queueing its children, which may finish first.
    serve.wait_for("every job to close", Duration::from_secs(30), || {
        (serve.metric("gantry_jobs{status=\"done\"}") >= 5.0).then_some(())
    });
    let m = serve.metrics();
    assert_eq!(
        metric(&m, "gantry_scan_duration_seconds_count{outcome=\"ok\"}"),
        4.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "gantry_verdicts_total{decision=\"deny\"}"),
        2.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "gantry_verdicts_total{decision=\"allow\"}"),
        2.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "gantry_webhook_events_total{source=\"distribution\",outcome=\"accepted\"}"
        ) >= 3.0,
        "{m}"
    );
    assert!(metric(&m, "gantry_jobs{status=\"done\"}") >= 5.0, "{m}");
    assert!(m.contains("gantry_layer_cache_hit_ratio"), "{m}");

    // The same push notified again without the token: 401, nothing queued.
    let before =
        metric(&m, "gantry_jobs{status=\"done\"}") + metric(&m, "gantry_jobs{status=\"queued\"}");
    let body =
        json!({"events": [distribution_event("replayed", &host, "team/other", "v9", &good)]});
    let r = post(
        serve.api,
        "/webhooks/distribution",
        &[("content-type", DISTRIBUTION_CT)],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = post(
        serve.api,
        "/webhooks/distribution",
        &[
            ("content-type", DISTRIBUTION_CT),
            ("authorization", "Bearer wrong"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let m = serve.metrics();
    let after =
        metric(&m, "gantry_jobs{status=\"done\"}") + metric(&m, "gantry_jobs{status=\"queued\"}");
    assert_eq!(before, after, "an unauthenticated event was queued");
    assert!(
        metric(
            &m,
            "gantry_webhook_events_total{source=\"distribution\",outcome=\"unauthorized\"}"
        ) >= 2.0
    );
}

/// Bad input: a clear 4xx with the error envelope, nothing queued, the service lives on.
#[test]
fn bad_webhook_input_is_refused_and_nothing_is_queued() {
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config("[webhooks.quay]\nenabled = false\n")
        .start();
    let dist = [("content-type", DISTRIBUTION_CT)];
    // (path, headers, body, status, error code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("/webhooks/distribution", dist.to_vec(), b"{not json".to_vec(), 400, "invalid-json"),
        ("/webhooks/distribution", vec![("content-type", "text/plain")], b"{}".to_vec(), 415, "unsupported-content-type"),
        ("/webhooks/distribution", dist.to_vec(), br#"{"events": [{"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}}]}"#.to_vec(), 400, "missing-field"),
        ("/webhooks/generic", vec![("content-type", "application/json")], br#"{"image": "UPPER/Case:../x"}"#.to_vec(), 400, "invalid-reference"),
        ("/webhooks/nosuch", vec![("content-type", "application/json")], b"{}".to_vec(), 404, "not-found"),
        ("/webhooks/quay", vec![("content-type", "application/json")], b"{}".to_vec(), 404, "not-found"),
    ];
    for (path, headers, body, status, code) in cases {
        let r = post(serve.api, path, &headers, &body);
        assert_eq!(
            r.status,
            status,
            "{path} {}: {}",
            String::from_utf8_lossy(&body[..body.len().min(80)]),
            r.body
        );
        assert_eq!(r.json()["error"]["code"], code, "{}", r.body);
    }
    // An announced oversized body is refused before a byte of it is read.
    let mut stream = std::net::TcpStream::connect(serve.api).unwrap();
    std::io::Write::write_all(&mut stream, format!("POST /webhooks/distribution HTTP/1.1\r\nhost: x\r\ncontent-type: {DISTRIBUTION_CT}\r\ncontent-length: 1073741824\r\n\r\n").as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body-too-large"), "{answer}");

    // Events a real registry sends that are not pushes: accepted with the reason, no job.
    let skipped = json!({"events": [
        {"id": "a", "action": "pull", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111", "repository": "x/y"}, "request": {"host": "127.0.0.1:5000", "method": "GET"}},
        {"id": "b", "action": "push", "target": {"mediaType": "application/octet-stream", "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "repository": "x/y"}, "request": {"host": "127.0.0.1:5000", "method": "PUT"}},
        {"id": "c", "action": "delete", "target": {"digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333", "repository": "x/y"}, "request": {"host": "127.0.0.1:5000", "method": "DELETE"}},
        {"id": "d", "action": "frobnicate", "target": {"repository": "x/y"}},
    ]});
    let r = post(
        serve.api,
        "/webhooks/distribution",
        &dist,
        skipped.to_string().as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], json!([]));
    let reasons: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["pull", "blob-push", "delete", "other-event"]);

    // API input.
    for (path, status, code) in [
        ("/v1/images/sha256:nothex/verdict", 400, "invalid-digest"),
        (
            "/v1/images/sha256:4444444444444444444444444444444444444444444444444444444444444444/verdict",
            404,
            "not-found",
        ),
        (
            "/v1/images/sha256:4444444444444444444444444444444444444444444444444444444444444444/sbom",
            404,
            "not-found",
        ),
        ("/v1/images", 400, "missing-repository"),
        ("/v1/jobs/12345", 404, "not-found"),
        ("/v1/jobs/abc", 400, "invalid-job-id"),
        ("/nowhere", 404, "not-found"),
    ] {
        let r = serve.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], code, "{path}: {}", r.body);
    }
    for (body, code) in [
        ("{".to_string(), "invalid-json"),
        (
            json!({"image": "a/b:c", "budget_seconds": -1}).to_string(),
            "invalid-budget",
        ),
        (
            json!({"image": "a/b:c", "budget_seconds": 100000}).to_string(),
            "invalid-budget",
        ),
        (
            json!({"image": "NOT A REF"}).to_string(),
            "invalid-reference",
        ),
        (
            json!({"image": "a/b:c", "extra": 1}).to_string(),
            "invalid-json",
        ),
    ] {
        let r = post(
            serve.api,
            "/v1/scan",
            &[("content-type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], code, "{body}: {}", r.body);
    }
    let r = post(
        serve.api,
        "/v1/scan",
        &[("content-type", "text/plain")],
        b"x",
    );
    assert_eq!(r.status, 415);

    let m = serve.metrics();
    for status in ["queued", "running", "done", "failed"] {
        assert_eq!(
            metric(&m, &format!("gantry_jobs{{status=\"{status}\"}}")),
            0.0,
            "{m}"
        );
    }
    assert!(
        metric(
            &m,
            "gantry_webhook_events_total{source=\"distribution\",outcome=\"rejected\"}"
        ) >= 4.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "gantry_webhook_events_total{source=\"distribution\",outcome=\"skipped\"}"
        ) >= 4.0,
        "{m}"
    );
    assert_eq!(get(serve.admin, "/readyz").status, 200);
    assert!(!serve.log().contains("panicked"), "{}", serve.log());
}

/// `kill -9` while a scan is in flight; the restarted service finishes the job.
#[test]
fn a_job_survives_a_crash_mid_scan() {
    let registry = RegistryHarness::start().unwrap();
    let pushed = good_image("crash")
        .push(&registry, "team/app", Some("v1"), None)
        .unwrap();
    let proxy = HoldingProxy::start(registry.addr(), true).unwrap();
    let home = tempfile::tempdir().unwrap();
    let setup = ServeSetup::new(home.path()).config("[workers]\nlease = \"2s\"\n");
    let mut first = setup.start();
    let image = format!("{}/team/app:v1", proxy.host());
    let r = first.post_json("/webhooks/generic", &json!({"image": image}));
    assert_eq!(r.status, 202, "{}", r.body);
    let job = r.json()["accepted"][0]["job_id"].as_i64().unwrap();
    first.wait_for(
        "the scan to reach the layers",
        Duration::from_secs(30),
        || (proxy.waiting() > 0).then_some(()),
    );
    assert_eq!(
        first.get(&format!("/v1/jobs/{job}")).json()["status"],
        "running"
    );
    first.kill();

    let second = setup.start();
    proxy.release();
    let v = second.verdict(&pushed.digest.to_string());
    assert_eq!(v["decision"], "allow", "{v}");
    let j = second.job_done(job);
    assert_eq!(j["attempts"], 2, "the second attempt finished it: {j}");
}

/// SIGTERM with a scan in flight: intake stops, the job goes back to the queue (its attempt
/// not counted), the process exits 0; the next start finishes it.
#[test]
fn sigterm_releases_the_running_job() {
    let registry = RegistryHarness::start().unwrap();
    let pushed = good_image("term")
        .push(&registry, "team/app", Some("v1"), None)
        .unwrap();
    let proxy = HoldingProxy::start(registry.addr(), true).unwrap();
    let home = tempfile::tempdir().unwrap();
    let setup = ServeSetup::new(home.path()).config("[workers]\nshutdown_grace = \"1s\"\n");
    let mut first = setup.start();
    let r = first.post_json(
        "/webhooks/generic",
        &json!({"image": format!("{}/team/app:v1", proxy.host())}),
    );
    let job = r.json()["accepted"][0]["job_id"].as_i64().unwrap();
    first.wait_for(
        "the scan to reach the layers",
        Duration::from_secs(30),
        || (proxy.waiting() > 0).then_some(()),
    );
    let status = first.terminate();
    assert!(status.success(), "exit {status:?}:\n{}", first.log());
    assert!(
        first.log().contains("job released to the queue"),
        "{}",
        first.log()
    );

    let second = setup.start();
    let j = second.get(&format!("/v1/jobs/{job}")).json();
    assert!(j["status"] == "queued" || j["status"] == "running", "{j}");
    proxy.release();
    assert_eq!(
        second.verdict(&pushed.digest.to_string())["decision"],
        "allow"
    );
    assert_eq!(second.job_done(job)["attempts"], 1);
}

/// 1,000 push events with duplicates (redelivered ids, several tags per digest), from
/// several senders at once: every one answered 202, every distinct digest scanned once.
#[test]
fn a_burst_of_events_scans_each_digest_exactly_once() {
    const DISTINCT: usize = 8;
    const EVENTS: usize = 1000;
    let registry = RegistryHarness::start().unwrap();
    let host = registry.host();
    let pushed: Vec<Pushed> = (0..DISTINCT)
        .map(|i| {
            let image = if i % 2 == 0 {
                good_image(&format!("b{i}"))
            } else {
                root_image(&format!("b{i}"))
            };
            image
                .push(&registry, &format!("burst/app{i}"), Some("v1"), None)
                .unwrap()
        })
        .collect();
    let home = tempfile::tempdir().unwrap();
    // One caller, on purpose: the per-address rate limit is not what this measures.
    let serve = ServeSetup::new(home.path())
        .config("[workers]\nconcurrency = 4\n[intake]\nrate_per_second = 100000\nburst = 100000\n")
        .start();
    let api = serve.api;
    let pushed = Arc::new(pushed);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (pushed, host) = (Arc::clone(&pushed), host.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for n in (t..EVENTS).step_by(8) {
                    let i = n % DISTINCT;
                    // Every third event is a redelivery of an earlier id; tags vary.
                    let id = format!("evt-{}", if n % 3 == 0 { n / 3 } else { n });
                    let tag = format!("t{}", n % 5);
                    let body = json!({"events": [distribution_event(&id, &host, &format!("burst/app{i}"), &tag, &pushed[i])]});
                    let r = post(api, "/webhooks/distribution", &[("content-type", DISTRIBUTION_CT)], body.to_string().as_bytes());
                    statuses.push(r.status);
                }
                statuses
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(statuses.len(), EVENTS);
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");

    serve.wait_for("the queue to drain", Duration::from_secs(120), || {
        let m = serve.metrics();
        (metric(&m, "gantry_jobs{status=\"queued\"}") == 0.0
            && metric(&m, "gantry_jobs{status=\"running\"}") == 0.0)
            .then_some(())
    });
    for p in pushed.iter() {
        serve.verdict(&p.digest.to_string());
    }
    let m = serve.metrics();
    assert_eq!(
        metric(&m, "gantry_scan_duration_seconds_count{outcome=\"ok\"}"),
        DISTINCT as f64,
        "{m}"
    );
    assert_eq!(
        metric(&m, "gantry_jobs{status=\"done\"}"),
        DISTINCT as f64,
        "{m}"
    );
    assert_eq!(metric(&m, "gantry_jobs{status=\"failed\"}"), 0.0, "{m}");
    let accepted = metric(
        &m,
        "gantry_webhook_events_total{source=\"distribution\",outcome=\"accepted\"}",
    );
    let dedup = metric(
        &m,
        "gantry_webhook_events_total{source=\"distribution\",outcome=\"deduplicated\"}",
    );
    assert_eq!(accepted, DISTINCT as f64, "{m}");
    assert_eq!(accepted + dedup, EVENTS as f64, "{m}");
    // Every tag sent is recorded, including those of absorbed duplicates.
    let listed = serve
        .get(&format!("/v1/images?repository={host}/burst/app0"))
        .json();
    assert_eq!(
        listed["images"][0]["tags"],
        json!(["t0", "t1", "t2", "t3", "t4"]),
        "{listed}"
    );
}

/// `POST /v1/scan`: a verdict within the budget, then from the store; a budget too short for a
/// held registry answers 202 with the job to follow, and the scan goes on.
#[test]
fn scan_api_answers_within_its_budget() {
    let registry = RegistryHarness::start().unwrap();
    let good = good_image("api")
        .push(&registry, "api/good", Some("v1"), None)
        .unwrap();
    let slow = root_image("api-slow")
        .push(&registry, "api/slow", Some("v1"), None)
        .unwrap();
    let proxy = HoldingProxy::start(registry.addr(), false).unwrap();
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path()).start();

    let image = format!("{}/api/good:v1", registry.host());
    let r = serve.post_json("/v1/scan", &json!({"image": image, "budget_seconds": 60}));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["cached"], false);
    assert_eq!(v["manifest_digest"], good.digest.to_string());
    let again = serve.post_json("/v1/scan", &json!({"image": image})).json();
    assert_eq!(again["cached"], true, "{again}");

    proxy.hold();
    let r = serve.post_json(
        "/v1/scan",
        &json!({"image": format!("{}/api/slow:v1", proxy.host()), "budget_seconds": 1}),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], "budget-exceeded");
    let job = v["job_id"].as_i64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/jobs/{job}").as_str())
    );
    proxy.release();
    assert_eq!(serve.verdict(&slow.digest.to_string())["decision"], "deny");
    serve.job_done(job);

    let r = serve.post_json(
        "/v1/scan",
        &json!({"image": format!("{}/api/missing:v1", registry.host())}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
}

/// A new policy bundle re-judges stored facts at startup, with the registry gone: no pull.
#[test]
fn a_policy_change_reevaluates_stored_facts_without_pulling() {
    let registry = RegistryHarness::start().unwrap();
    let root = root_image("policy")
        .push(&registry, "pol/app", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut first = ServeSetup::new(home.path()).start();
    let r = first.post_json(
        "/v1/scan",
        &json!({"image": format!("{}/pol/app:v1", registry.host())}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let old = r.json();
    assert_eq!(old["decision"], "deny");
    first.terminate();
    drop(registry);

    let data = home.path().join("site.json");
    std::fs::write(
        &data,
        r#"{"gantry": {"non_root": {"allowed_root_images": ["**"]}}}"#,
    )
    .unwrap();
    let second = ServeSetup::new(home.path())
        .config(&format!("policy_data = {:?}\n", data.display().to_string()))
        .start();
    let new = second.verdict(&root.digest.to_string());
    assert_eq!(new["decision"], "allow", "{new}");
    assert_ne!(new["policy_digest"], old["policy_digest"]);
    // The verdict under the old bundle stays readable.
    let before = second.get(&format!(
        "/v1/images/{}/verdict?policy={}",
        root.digest,
        old["policy_digest"].as_str().unwrap()
    ));
    assert_eq!(before.json()["decision"], "deny");
    assert!(
        second.log().contains("verdict changed (new policy bundle"),
        "{}",
        second.log()
    );
    assert_eq!(
        second.metric("gantry_scan_duration_seconds_count{outcome=\"ok\"}"),
        0.0
    );
}

/// Two replicas on one Postgres: the work is shared with no digest scanned twice; then one
/// replica is killed mid-scan and the other finishes its job.
#[test]
fn replicas_on_postgres_share_the_work_and_survive_a_kill() {
    const IMAGES: usize = 12;
    let pg = PostgresHarness::start().unwrap();
    let registry = RegistryHarness::start().unwrap();
    let pushed: Vec<Pushed> = (0..IMAGES)
        .map(|i| {
            good_image(&format!("pg{i}"))
                .push(&registry, &format!("pg/app{i}"), Some("v1"), None)
                .unwrap()
        })
        .collect();
    let home_a = tempfile::tempdir().unwrap();
    let home_b = tempfile::tempdir().unwrap();
    let config = "[workers]\nconcurrency = 2\nlease = \"2s\"\npoll_interval = \"100ms\"\n";
    let mut a = ServeSetup::new(home_a.path())
        .config(config)
        .arg("--database-url")
        .arg(&pg.url())
        .start();
    let b = ServeSetup::new(home_b.path())
        .config(config)
        .env("GANTRY_DATABASE_URL", &pg.url())
        .start();

    // Phase 1: events split over both replicas, each digest sent to both.
    for (i, p) in pushed.iter().enumerate() {
        for serve in [&a, &b] {
            let r = serve.post_json(
                "/webhooks/generic",
                &json!({"image": format!("{}/pg/app{i}:v1@{}", registry.host(), p.digest)}),
            );
            assert_eq!(r.status, 202, "{}", r.body);
        }
    }
    for p in &pushed {
        b.verdict(&p.digest.to_string());
    }
    let scans = a.metric("gantry_scan_duration_seconds_count{outcome=\"ok\"}")
        + b.metric("gantry_scan_duration_seconds_count{outcome=\"ok\"}");
    assert_eq!(
        scans, IMAGES as f64,
        "a digest was scanned twice (or not at all)"
    );
    b.wait_metric("gantry_jobs{status=\"done\"}", IMAGES as f64);

    // Phase 2: with B gone, replica A takes a job and is killed mid-scan; a new replica
    // takes the job over once A's lease runs out.
    drop(b);
    let late = good_image("pg-late")
        .push(&registry, "pg/late", Some("v1"), None)
        .unwrap();
    let proxy = HoldingProxy::start(registry.addr(), true).unwrap();
    let r = a.post_json(
        "/webhooks/generic",
        &json!({"image": format!("{}/pg/late:v1", proxy.host())}),
    );
    let job = r.json()["accepted"][0]["job_id"].as_i64().unwrap();
    a.wait_for(
        "replica A to start the scan",
        Duration::from_secs(30),
        || (proxy.waiting() > 0).then_some(()),
    );
    let c = ServeSetup::new(home_b.path())
        .config(config)
        .env("GANTRY_DATABASE_URL", &pg.url())
        .start();
    a.kill();
    proxy.release();
    let v = c.verdict(&late.digest.to_string());
    assert_eq!(v["decision"], "allow", "{v}");
    let j = c.job_done(job);
    assert_eq!(j["attempts"], 2, "{j}");
    assert_eq!(
        c.metric("gantry_jobs{status=\"done\"}"),
        (IMAGES + 1) as f64
    );
}

/// Every captured sender payload, POSTed to its endpoint over HTTP: pushes become jobs (202),
/// the rest is listed as skipped. An intake-only replica (no workers), so nothing is pulled
/// from the hosts the payloads name.
#[test]
fn captured_sender_payloads_are_taken_at_their_endpoints() {
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config("[workers]\nconcurrency = 0\n")
        .start();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/server/tests/payloads");
    // (file, endpoint, content type, accepted, skipped)
    let cases = [
        (
            "distribution-2.8.2-captured-push-manifest-by-tag.json",
            "distribution",
            DISTRIBUTION_CT,
            1,
            0,
        ),
        (
            "distribution-2.8.2-captured-push-index-by-tag.json",
            "distribution",
            DISTRIBUTION_CT,
            1,
            0,
        ),
        (
            "distribution-2.8.2-captured-push-blob.json",
            "distribution",
            DISTRIBUTION_CT,
            0,
            1,
        ),
        (
            "distribution-2.8.2-captured-pull-manifest.json",
            "distribution",
            DISTRIBUTION_CT,
            0,
            1,
        ),
        (
            "distribution-2.8.2-captured-delete-manifest.json",
            "distribution",
            DISTRIBUTION_CT,
            0,
            1,
        ),
        (
            "harbor-push-artifact.json",
            "harbor",
            "application/json",
            1,
            0,
        ),
        (
            "harbor-scanning-completed.json",
            "harbor",
            "application/json",
            0,
            1,
        ),
        ("dockerhub-push.json", "dockerhub", "application/json", 1, 0),
        (
            "gitlab-registry-push-manifest.json",
            "gitlab",
            "application/vnd.docker.distribution.events.v1+json",
            1,
            0,
        ),
    ];
    for (file, endpoint, ct, accepted, skipped) in cases {
        let body = std::fs::read(dir.join(file)).unwrap();
        let r = post(
            serve.api,
            &format!("/webhooks/{endpoint}"),
            &[("content-type", ct)],
            &body,
        );
        assert_eq!(r.status, 202, "{file}: {}", r.body);
        let v = r.json();
        assert_eq!(
            v["accepted"].as_array().unwrap().len(),
            accepted,
            "{file}: {v}"
        );
        assert_eq!(
            v["skipped"].as_array().unwrap().len(),
            skipped,
            "{file}: {v}"
        );
        // A redelivery of the same payload schedules nothing new.
        let again = post(
            serve.api,
            &format!("/webhooks/{endpoint}"),
            &[("content-type", ct)],
            &body,
        )
        .json();
        for a in again["accepted"].as_array().unwrap() {
            assert_eq!(a["deduplicated"], true, "{file}: {again}");
        }
    }
    // Quay sends no digest (one event per updated tag): the jobs wait for a worker to resolve them.
    let quay = std::fs::read(dir.join("quay-repo-push.json")).unwrap();
    let r = post(
        serve.api,
        "/webhooks/quay",
        &[("content-type", "application/json")],
        &quay,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(!r.json()["accepted"].as_array().unwrap().is_empty());
    let m = serve.metrics();
    assert_eq!(
        metric(&m, "gantry_jobs{status=\"running\"}"),
        0.0,
        "intake-only replica ran a job"
    );
    assert!(metric(&m, "gantry_jobs{status=\"queued\"}") >= 6.0, "{m}");
}

/// A receiver that fails its first delivery: Gantry retries and delivers the verdict.
#[test]
fn verdict_notifications_are_retried_until_delivered() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::<(u16, String, String)>::new()));
    {
        let received = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut auth = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        auth = line["authorization:".len()..].trim().to_string();
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let mut log = received.lock().unwrap();
                // The first delivery fails; later ones succeed.
                let status = if log.is_empty() { 503 } else { 204 };
                log.push((status, auth, String::from_utf8_lossy(&body).into_owned()));
                let _ = std::io::Write::write_all(
                    &mut stream,
                    format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
            }
        });
    }
    let registry = RegistryHarness::start().unwrap();
    let root = root_image("notify")
        .push(&registry, "hook/app", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config(&format!(
            "[notify]\nurl = \"http://{hook}/gantry\"\ndecisions = [\"deny\"]\nbackoff = \"100ms\"\nheaders = {{ Authorization = \"Bearer hook-token\" }}\n"
        ))
        .start();
    let r = serve.post_json(
        "/v1/scan",
        &json!({"image": format!("{}/hook/app:v1", registry.host())}),
    );
    assert_eq!(r.json()["decision"], "deny", "{}", r.body);
    serve.wait_for(
        "the notification to be delivered",
        Duration::from_secs(30),
        || (received.lock().unwrap().len() >= 2).then_some(()),
    );
    let log = received.lock().unwrap().clone();
    assert_eq!(log[0].0, 503);
    assert_eq!(log[1].0, 204);
    assert_eq!(log[0].2, log[1].2, "a retry sends the same notification");
    assert_eq!(log[1].1, "Bearer hook-token");
    let n: Value = serde_json::from_str(&log[1].2).unwrap();
    assert_eq!(n["type"], "gantry.verdict");
    assert_eq!(n["decision"], "deny");
    assert_eq!(n["manifest_digest"], root.digest.to_string());
    assert_eq!(n["repository"], format!("{}/hook/app", registry.host()));
    assert!(
        codes(&n["violations"]).contains(&"root-user".to_string()),
        "{n}"
    );
    serve.wait_for("the delivered counter", Duration::from_secs(10), || {
        let m = serve.metrics();
        (metric(&m, "gantry_notifications_total{outcome=\"delivered\"}") == 1.0
            && metric(&m, "gantry_notifications_total{outcome=\"retry\"}") == 1.0)
            .then_some(())
    });
    // An allow verdict is not notified (decisions = ["deny"]).
    let good = good_image("notify-ok")
        .push(&registry, "hook/ok", Some("v1"), None)
        .unwrap();
    let r = serve.post_json(
        "/v1/scan",
        &json!({"image": format!("{}/hook/ok@{}", registry.host(), good.digest)}),
    );
    assert_eq!(r.json()["decision"], "allow");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(received.lock().unwrap().len(), 2);
}

/// `[api.auth]`: the API asks for its token; webhooks and the admin port keep their own rules.
#[test]
fn the_api_can_require_a_token() {
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config("[api.auth]\ntype = \"bearer\"\ntoken_env = \"TEST_API_TOKEN\"\n")
        .env("TEST_API_TOKEN", "api-secret")
        .start();
    for path in ["/v1/jobs/1", "/v1/images?repository=x/y"] {
        let r = serve.get(path);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(
            r.json()["error"]["code"],
            "missing-credentials",
            "{}",
            r.body
        );
    }
    let r = post(
        serve.api,
        "/v1/scan",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer nope"),
        ],
        b"{}",
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid-credentials");
    let r = try_get_with(serve.api, "/v1/jobs/1", "Bearer api-secret");
    assert_eq!(r.status, 404, "{}", r.body);
    // Webhooks authenticate per endpoint (none here), health needs nothing.
    let r = serve.post_json("/webhooks/generic", &json!({"image": "127.0.0.1:1/x/y:v1"}));
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(get(serve.admin, "/readyz").status, 200);
}

pub(crate) fn try_get_with(base: SocketAddr, path: &str, authorization: &str) -> Reply {
    reply(
        agent()
            .get(format!("http://{base}{path}"))
            .header("authorization", authorization)
            .call()
            .unwrap(),
    )
}

// ---- secure by default (issue 11) ----

/// Off loopback nothing starts open: without `[auth]` the service refuses to start and says
/// what to set.
#[test]
fn an_open_listener_off_loopback_refuses_to_start() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(home.path().join("data"))
        .env("HOME", home.path())
        .env_remove("GANTRY_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[auth]") && err.contains("not a loopback address"),
        "{err}"
    );
    assert!(
        !home.path().join("data/gantry.db").exists(),
        "nothing was opened"
    );
}

/// One `[auth]` for everything: every sender inherits it (Docker Hub answered 202 to anyone
/// while generic and API auth were set), a sender sets its own or opts out only explicitly,
/// and `/metrics` takes it too.
#[test]
fn every_sender_the_api_and_metrics_inherit_the_default_auth() {
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config(
            r#"
[auth]
type = "bearer"
token = "the-token"
[webhooks.dockerhub.auth]
type = "query"
value = "hub-secret"
[webhooks.quay.auth]
type = "none"
[workers]
concurrency = 0
"#,
        )
        .start();
    let body = br#"{"image": "127.0.0.1:1/inherit/app:v1"}"#;
    let json = ("content-type", "application/json");
    for sender in ["generic", "distribution", "harbor", "gitlab", "dockerhub"] {
        let r = post(serve.api, &format!("/webhooks/{sender}"), &[json], body);
        assert_eq!(r.status, 401, "{sender}: {}", r.body);
    }
    let r = post(
        serve.api,
        "/webhooks/generic",
        &[json, ("authorization", "Bearer the-token")],
        body,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    // Docker Hub can set only a URL: its own secret, in the query string.
    let hub = json!({
        "callback_url": "https://registry.hub.docker.com/u/inherit/app/hook/x/",
        "push_data": {"pushed_at": 1, "pusher": "me", "tag": "v1"},
        "repository": {"repo_name": "inherit/app", "namespace": "inherit", "name": "app"}
    })
    .to_string();
    let r = post(
        serve.api,
        "/webhooks/dockerhub?token=nope",
        &[json],
        hub.as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post(
        serve.api,
        "/webhooks/dockerhub?token=hub-secret",
        &[json],
        hub.as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    // Quay opted out in so many words: anonymous there only.
    let quay = json!({
        "repository": "inherit/app", "namespace": "inherit", "name": "app",
        "docker_url": "127.0.0.1:1/inherit/app", "homepage": "x",
        "updated_tags": ["v1"]
    })
    .to_string();
    let r = post(serve.api, "/webhooks/quay", &[json], quay.as_bytes());
    assert_eq!(r.status, 202, "{}", r.body);
    // The API and /metrics, with the same token; the probes stay open.
    assert_eq!(serve.get("/v1/jobs/1").status, 401);
    assert_eq!(
        try_get_with(serve.api, "/v1/jobs/1", "Bearer the-token").status,
        200
    );
    let m = get(serve.admin, "/metrics");
    assert_eq!(m.status, 401, "{}", m.body);
    assert!(!m.body.contains("gantry_"), "{}", m.body);
    let m = try_get_with(serve.admin, "/metrics", "Bearer the-token");
    assert_eq!(m.status, 200);
    assert!(m.body.contains("gantry_webhook_events_total"), "{}", m.body);
    assert_eq!(get(serve.admin, "/healthz").status, 200);
    assert_eq!(get(serve.admin, "/readyz").status, 200);
}

/// One request cannot queue a thousand scans, one caller cannot flood, and a full queue
/// says so (429, Retry-After) instead of growing without end.
#[test]
fn floods_are_refused_with_429() {
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config(
            r#"
[intake]
max_images_per_request = 2
max_queued = 2
rate_per_second = 1
burst = 5
[workers]
concurrency = 0
"#,
        )
        .start();
    let json = [("content-type", "application/json")];
    let images = |names: &[&str]| {
        json!({"images": names.iter().map(|n| format!("127.0.0.1:1/flood/{n}:v1")).collect::<Vec<_>>()})
            .to_string()
    };
    let r = post(
        serve.api,
        "/webhooks/generic",
        &json,
        images(&["a", "b", "c"]).as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "too-many-images");
    let r = post(
        serve.api,
        "/webhooks/generic",
        &json,
        images(&["a", "b"]).as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    // Two queued: the queue is full for new work.
    let r = post(
        serve.api,
        "/webhooks/generic",
        &json,
        images(&["c"]).as_bytes(),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "queue-full");
    assert!(r.header("retry-after").is_some());
    let r = serve.post_json("/v1/scan", &json!({"image": "127.0.0.1:1/flood/d:v1"}));
    assert_eq!(r.status, 429, "{}", r.body);
    // Once the burst of five is spent, the caller waits for the rate.
    let again = || {
        post(
            serve.api,
            "/webhooks/generic",
            &json,
            images(&["e"]).as_bytes(),
        )
    };
    let mut r = again();
    for _ in 0..3 {
        if r.json()["error"]["code"] == "rate-limited" {
            break;
        }
        r = again();
    }
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "rate-limited", "{}", r.body);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
}

/// A client that opens a connection and sends its headers slowly (or not at all) is cut off
/// at the header timeout, and cannot hold up a shutdown past the deadline.
#[test]
fn slow_clients_are_cut_off_and_cannot_hold_up_shutdown() {
    use std::io::Write as _;
    let home = tempfile::tempdir().unwrap();
    let mut serve = ServeSetup::new(home.path())
        .config("[http]\nheader_timeout = \"1s\"\nshutdown_deadline = \"3s\"\n")
        .start();
    for listener in [serve.api, serve.admin] {
        let mut slow = std::net::TcpStream::connect(listener).unwrap();
        slow.write_all(b"GET /v1/jobs/1 HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        let _ = slow.read_to_end(&mut buf);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{listener}: open for {took:?}"
        );
    }
    // Idle connections stay open until SIGTERM; the service still stops in time.
    let _idle = std::net::TcpStream::connect(serve.api).unwrap();
    let _partial = {
        let mut s = std::net::TcpStream::connect(serve.api).unwrap();
        s.write_all(b"POST /webhooks/generic HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            .unwrap();
        s
    };
    let started = Instant::now();
    let status = serve.terminate();
    assert!(status.success(), "{status:?}\n{}", serve.log());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
}

/// A verdict that an exception made holds only until the exception expires: then the
/// same stored facts are judged again, and the image is denied — by the API and the
/// re-evaluation alike, with no new pull.
#[test]
fn an_expired_exception_stops_allowing() {
    let registry = RegistryHarness::start().unwrap();
    let pushed = root_image("expiring")
        .push(&registry, "waived/app", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expires = gantry_model::time::rfc3339(now + 5);
    let data = home.path().join("data.json");
    std::fs::write(
        &data,
        json!({"gantry": {"exceptions": [{"code": "root-user", "reason": "migrating", "expires": expires}]}})
            .to_string(),
    )
    .unwrap();
    let serve = ServeSetup::new(home.path())
        .config(&format!("policy_data = {:?}\n", data.display().to_string()))
        .start();
    let image = format!("{}/waived/app:v1", registry.host());
    let r = serve.post_json("/v1/scan", &json!({"image": image}));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["decision"], "allow", "{v}");
    let waived: Vec<&str> = v["verdict"]["waived"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["finding"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(waived, ["root-user"]);
    assert!(
        v["valid_until"].as_str().unwrap() <= expires.as_str(),
        "{v}"
    );
    drop(registry);
    std::thread::sleep(Duration::from_secs(6));
    let path = format!(
        "/v1/images/{}/verdict?reference={image}&mode=api",
        pushed.digest
    );
    let after = serve.get(&path);
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.json()["decision"], "deny", "{}", after.body);
    assert!(codes(&after.json()["verdict"]["violations"]).contains(&"root-user".to_string()));
}

/// The data directory and the database are Gantry's alone (they were 0755 and 0644).
#[test]
fn stored_data_is_readable_by_gantry_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path()).start();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = home.path().join("data");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("layer-cache")), 0o700);
    for file in ["gantry.db", "gantry.db-wal", "gantry.db-shm"] {
        let path = data.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert!(data.join("gantry.db").exists());
    drop(serve);
}

/// `GET /v1/images` comes a page at a time.
#[test]
fn image_listings_are_paged() {
    let registry = RegistryHarness::start().unwrap();
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path()).start();
    for i in 0..3 {
        good_image(&format!("paged-{i}"))
            .push(&registry, "paged/app", Some(&format!("v{i}")), None)
            .unwrap();
        let r = serve.post_json(
            "/v1/scan",
            &json!({"image": format!("{}/paged/app:v{i}", registry.host())}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let base = format!(
        "/v1/images?repository={}/paged/app&limit=2",
        registry.host()
    );
    let first = serve.get(&base).json();
    assert_eq!(first["images"].as_array().unwrap().len(), 2, "{first}");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = serve.get(&format!("{base}&cursor={cursor}")).json();
    assert_eq!(second["images"].as_array().unwrap().len(), 1, "{second}");
    assert!(second["next_cursor"].is_null());
    assert_eq!(serve.get(&format!("{base}&cursor=garbage")).status, 400);
    assert_eq!(
        serve.get("/v1/images?repository=x/y&limit=100000").status,
        400
    );
}

/// `[base_freshness]`: once the tag an image's base was built from moves, its verdict warns
/// "base … outdated since …" (judged again from the stored facts) and the image counts in
/// `gantry_images_base_outdated`. A base on a registry `[registry] allow` does not permit is
/// never asked: its check fails and the verdict says nothing.
#[test]
fn an_outdated_base_is_a_warning_and_a_metric() {
    const BASE_NAME: &str = "org.opencontainers.image.base.name";
    const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
    let registry = RegistryHarness::start().unwrap();
    let host = registry.host();
    let base_v1 = good_image("base-v1")
        .push(&registry, "base/os", Some("1.0"), None)
        .unwrap();
    let on_base = good_builder("on-base")
        .annotation(BASE_NAME, &format!("{host}/base/os:1.0"))
        .annotation(BASE_DIGEST, &base_v1.digest.to_string())
        .build()
        .unwrap()
        .push(&registry, "fresh/app", Some("v1"), None)
        .unwrap();
    let elsewhere = good_builder("elsewhere")
        .annotation(BASE_NAME, "registry.invalid:5000/base/os:1.0")
        .annotation(BASE_DIGEST, &base_v1.digest.to_string())
        .build()
        .unwrap()
        .push(&registry, "fresh/other", Some("v1"), None)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let serve = ServeSetup::new(home.path())
        .config("[base_freshness]\ninterval = \"1s\"\n")
        .start();
    let image = format!("{host}/fresh/app:v1");
    let other = format!("{host}/fresh/other:v1");
    for name in [&image, &other] {
        let r = serve.post_json("/v1/scan", &json!({"image": name}));
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        assert!(
            !codes(&v["verdict"]["warnings"]).contains(&"base-outdated".to_string()),
            "{v}"
        );
    }
    serve.wait_for("both base tags checked", Duration::from_secs(20), || {
        let m = serve.metrics();
        (metric(&m, "gantry_base_checks_total{outcome=\"resolved\"}") >= 1.0
            && metric(&m, "gantry_base_checks_total{outcome=\"failed\"}") >= 1.0)
            .then_some(())
    });
    assert_eq!(serve.metric("gantry_images_base_outdated"), 0.0);

    // The base's maintainers push a new 1.0.
    let base_v2 = good_image("base-v2")
        .push(&registry, "base/os", Some("1.0"), None)
        .unwrap();
    assert_ne!(base_v1.digest, base_v2.digest);
    let path = format!(
        "/v1/images/{}/verdict?reference={image}&mode=api",
        on_base.digest
    );
    let verdict = serve.wait_for(
        "the outdated base is reported",
        Duration::from_secs(20),
        || {
            let r = serve.get(&path);
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            codes(&v["verdict"]["warnings"])
                .contains(&"base-outdated".to_string())
                .then_some(v)
        },
    );
    assert_eq!(verdict["decision"], "allow", "{verdict}");
    let warning = verdict["verdict"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "base-outdated")
        .unwrap()
        .clone();
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("base {host}/base/os:1.0 outdated since 20"))
            && message.contains(&base_v1.digest.to_string())
            && message.contains(&format!("now {}", base_v2.digest)),
        "{message}"
    );
    assert_eq!(serve.metric("gantry_images_base_outdated"), 1.0);

    // The base nobody may contact: checked (and failed) without a verdict change.
    let other_path = format!(
        "/v1/images/{}/verdict?reference={other}&mode=api",
        elsewhere.digest
    );
    let r = serve.get(&other_path);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!codes(&r.json()["verdict"]["warnings"]).contains(&"base-outdated".to_string()));
    assert!(
        serve.log().contains("cannot check the base image's tag"),
        "{}",
        serve.log()
    );
}
