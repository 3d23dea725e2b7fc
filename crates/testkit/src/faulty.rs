//! [`FaultyRegistry`]: answers every request badly, for registry-client error paths.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::http::{Server, reason, respond};
use crate::push::Target;

/// How a [`FaultyRegistry`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every request gets this status with a distribution-style JSON error body; a 401 comes
    /// without any `WWW-Authenticate` challenge.
    Status(u16),
    /// The request is read and never answered (until the server is dropped).
    Hang,
    /// `200` with `Content-Length: 1048576`, then one byte per `interval`: a stalled stream.
    Slow {
        /// Pause between bytes.
        interval: Duration,
    },
    /// The connection is closed without an answer.
    Close,
}

/// A tiny HTTP server on 127.0.0.1 that answers every request with the same [`Fault`].
#[derive(Debug)]
pub struct FaultyRegistry {
    server: Server,
    requests: Arc<AtomicUsize>,
}

impl FaultyRegistry {
    /// Starts serving on a free port (bound for its whole life: no port race).
    pub fn start(fault: Fault) -> Result<FaultyRegistry> {
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        let server = Server::start(
            "faulty registry",
            Arc::new(move |stream: &TcpStream, _req, stop: &AtomicBool| {
                count.fetch_add(1, Ordering::SeqCst);
                serve(fault, stream, stop);
            }),
        )?;
        Ok(FaultyRegistry { server, requests })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `127.0.0.1:PORT/repo:tag`.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr())
    }

    /// How many requests arrived so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Target for FaultyRegistry {
    fn base_url(&self) -> String {
        self.url()
    }
}

fn serve(fault: Fault, mut stream: &TcpStream, stop: &AtomicBool) {
    let tick = Duration::from_millis(20);
    match fault {
        Fault::Status(code) => {
            let body = serde_json::json!({"errors": [{"code": "UNKNOWN", "message": format!("gantry-testkit fault: {code} {}", reason(code))}]});
            let _ = respond(
                stream,
                code,
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            );
        }
        Fault::Hang => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(tick);
            }
        }
        Fault::Slow { interval } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            for _ in 0..1_048_576u32 {
                let mut waited = Duration::ZERO;
                while waited < interval {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let step = tick.min(interval - waited);
                    std::thread::sleep(step);
                    waited += step;
                }
                if stream.write_all(b"{").and_then(|_| stream.flush()).is_err() {
                    return;
                }
            }
        }
        Fault::Close => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}
