//! Load benchmark of a running `gantry serve` (scripts/bench.sh section `serve`):
//!
//! 1. webhook intake: N Distribution push events (with redeliveries and repeated digests) from
//!    C concurrent senders; latency of each POST (the registry waits for it), per event.
//! 2. admission: R AdmissionReviews of an image whose verdict is stored, from F clients in
//!    flight at once over kept-alive HTTPS connections; latency of each review.
//!
//! Everything on 127.0.0.1: a Debian docker-registry (gantry-testkit) and the gantry binary
//! named by `GANTRY_BIN` (default target/release/gantry). Prints Markdown tables.
//!
//! cargo run --release -p gantry-server --example serve_bench -- [events] [senders] [reviews] [in-flight]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_model::oci::Compression;
use gantry_testkit::{Artifact, ImageBuilder, LayerBuilder, Pushed, RegistryHarness};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One line of the report on stdout (progress and errors go to stderr).
macro_rules! emit {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
    }};
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn image(marker: &str) -> Result<gantry_testkit::BuiltImage, Error> {
    Ok(ImageBuilder::new()
        .user("65534")
        .annotation(
            "org.opencontainers.image.base.name",
            "gcr.io/distroless/static-debian12@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .layer(LayerBuilder::new(Compression::Gzip).file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"))
        .layer(LayerBuilder::new(Compression::Zstd).file_mode("app/server", format!("\x7fELF {marker}"), 0o755))
        .build()?)
}

struct Server {
    child: Child,
    api: SocketAddr,
    admin: SocketAddr,
    admission: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Result<Server, Error> {
    let bin = std::env::var("GANTRY_BIN").unwrap_or_else(|_| "target/release/gantry".to_string());
    std::fs::write(
        dir.join("gantry.toml"),
        // The harness registry is on 127.0.0.1, which is reached only when listed.
        "[scan]\nbase_lookup = false\n[workers]\nconcurrency = 2\n[registry]\nallow = [\"127.0.0.1\"]\n",
    )?;
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--admission-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config")
        .arg(dir.join("gantry.toml"))
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .env("HOME", dir)
        .env("GANTRY_LOG", "warn,gantry_server::serve=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let line = loop {
        let line = lines.next().ok_or("gantry serve exited")??;
        if line.contains("gantry serve listening") {
            break line;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let field = |name: &str| -> Result<SocketAddr, Error> {
        let start = line.find(&format!(" {name}=")).ok_or("no address")? + name.len() + 2;
        Ok(line[start..]
            .split_whitespace()
            .next()
            .ok_or("no address")?
            .parse()?)
    };
    Ok(Server {
        api: field("api")?,
        admin: field("admin")?,
        admission: field("admission")?,
        child,
    })
}

/// p50, p99, max in milliseconds.
fn quantiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort_unstable();
    let at = |q: f64| {
        v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99), at(1.0))
}

fn webhooks(
    server: &Server,
    registry: &str,
    pushed: &[Pushed],
    events: usize,
    senders: usize,
) -> Result<(), Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let pushed = Arc::new(pushed.to_vec());
    let started = Instant::now();
    let threads: Vec<_> = (0..senders)
        .map(|t| {
            let (agent, pushed, registry, api) = (agent.clone(), Arc::clone(&pushed), registry.to_string(), server.api);
            std::thread::spawn(move || -> Result<Vec<Duration>, Error> {
                let mut lat = Vec::new();
                for n in (t..events).step_by(senders) {
                    let i = n % pushed.len();
                    let id = format!("bench-{}", if n % 4 == 0 { n / 4 } else { n });
                    let body = json!({"events": [{
                        "id": id, "action": "push",
                        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": pushed[i].digest.to_string(), "repository": format!("bench/app{i}"), "tag": format!("t{}", n % 7)},
                        "request": {"host": registry, "method": "PUT"},
                    }]})
                    .to_string();
                    let t0 = Instant::now();
                    let resp = agent
                        .post(format!("http://{api}/webhooks/distribution"))
                        .header("content-type", "application/vnd.docker.distribution.events.v2+json")
                        .send(body.as_bytes())?;
                    lat.push(t0.elapsed());
                    if resp.status() != 202 {
                        return Err(format!("status {}", resp.status()).into());
                    }
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().map_err(|_| "sender panicked")??);
    }
    let wall = started.elapsed();
    let (p50, p99, max) = quantiles(all);
    emit!(
        "| webhook intake | {events} events, {senders} senders, {} distinct digests | {:.0} events/s | {p50:.2} | {p99:.2} | {max:.2} |",
        pushed.len(),
        events as f64 / wall.as_secs_f64()
    );
    Ok(())
}

/// A kept-alive HTTPS connection sending AdmissionReviews.
struct Client {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<Client, Error> {
        let conn = rustls::ClientConnection::new(config, ServerName::IpAddress(addr.ip().into()))?;
        let tcp = TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        Ok(Client {
            tls: rustls::StreamOwned::new(conn, tcp),
        })
    }

    fn review(&mut self, body: &[u8]) -> Result<Vec<u8>, Error> {
        write!(
            self.tls,
            "POST /admission?timeout=10s HTTP/1.1\r\nhost: gantry\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )?;
        self.tls.write_all(body)?;
        self.tls.flush()?;
        // Read the head byte by byte up to the blank line, then exactly the body.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.tls.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .ok_or("no content-length")?
            .trim()
            .parse()?;
        let mut body = vec![0; len];
        self.tls.read_exact(&mut body)?;
        Ok(body)
    }
}

fn admission(
    server: &Server,
    ca: &str,
    image: &str,
    reviews: usize,
    in_flight: usize,
) -> Result<(), Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c?)?;
    }
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let review = |uid: usize| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": format!("bench-{uid}"), "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "namespace": "bench", "operation": "CREATE", "userInfo": {"username": "bench"},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
                "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}, {"name": "sidecar", "image": image}]}}}},
        }})
        .to_string()
    };
    // Warm: the first review scans and stores the verdict.
    let mut warm = Client::connect(server.admission, Arc::clone(&config))?;
    let first = warm.review(review(0).as_bytes())?;
    if !String::from_utf8_lossy(&first).contains("\"allowed\":true") {
        return Err(format!(
            "warm-up review not allowed: {}",
            String::from_utf8_lossy(&first)
        )
        .into());
    }
    let per_client = reviews.div_ceil(in_flight);
    let started = Instant::now();
    let threads: Vec<_> = (0..in_flight)
        .map(|c| {
            let (config, addr) = (Arc::clone(&config), server.admission);
            let bodies: Vec<String> = (0..per_client)
                .map(|i| review(1 + c * per_client + i))
                .collect();
            std::thread::spawn(move || -> Result<Vec<Duration>, Error> {
                let mut client = Client::connect(addr, config)?;
                let mut lat = Vec::with_capacity(bodies.len());
                for b in &bodies {
                    let t0 = Instant::now();
                    let answer = client.review(b.as_bytes())?;
                    lat.push(t0.elapsed());
                    if !answer.windows(14).any(|w| w == b"\"allowed\":true") {
                        return Err("a cached review was not allowed".into());
                    }
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().map_err(|_| "client panicked")??);
    }
    let wall = started.elapsed();
    let n = all.len();
    let (p50, p99, max) = quantiles(all);
    emit!(
        "| admission, stored verdict | {n} reviews, {in_flight} in flight, HTTPS keep-alive | {:.0} reviews/s | {p50:.2} | {p99:.2} | {max:.2} |",
        n as f64 / wall.as_secs_f64()
    );
    // Server-side time per review, from the service's own histogram.
    let metrics = ureq::get(format!("http://{}/metrics", server.admin))
        .call()?
        .into_body()
        .read_to_string()?;
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (sum, count) = (
        value("gantry_admission_duration_seconds_sum"),
        value("gantry_admission_duration_seconds_count"),
    );
    let under = |le: &str| {
        value(&format!(
            "gantry_admission_duration_seconds_bucket{{le=\"{le}\"}}"
        )) / count.max(1.0)
            * 100.0
    };
    emit!(
        "| admission, server side | mean of {count} reviews (warm-up scan included) | | {:.3} mean | ≤ 2 ms: {:.1}% | ≤ 8 ms: {:.1}% |",
        sum / count.max(1.0) * 1000.0,
        under("0.002"),
        under("0.008"),
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let (events, senders, reviews, in_flight) =
        (arg(1, 1000), arg(2, 16), arg(3, 10_000), arg(4, 200));
    let dir = tempfile::tempdir()?;
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])?;
    std::fs::write(dir.path().join("tls.crt"), cert.cert.pem())?;
    std::fs::write(dir.path().join("tls.key"), cert.signing_key.serialize_pem())?;
    let registry = RegistryHarness::start()?;
    let pushed: Vec<Pushed> = (0..10)
        .map(|i| {
            image(&format!("bench{i}"))?
                .push(&registry, &format!("bench/app{i}"), Some("v1"), None)
                .map_err(Error::from)
        })
        .collect::<Result<_, _>>()?;
    let server = start(dir.path())?;
    emit!("| what | load | throughput | p50 ms | p99 ms | max ms |");
    emit!("|---|---|---|---|---|---|");
    webhooks(&server, &registry.host(), &pushed, events, senders)?;
    admission(
        &server,
        &cert.cert.pem(),
        &format!("{}/bench/app0:v1", registry.host()),
        reviews,
        in_flight,
    )?;
    Ok(())
}
