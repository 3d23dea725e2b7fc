//! A read-only proxy in front of a registry that can hold blob downloads: the way to catch a
//! scan in the middle (a job `running`, its layers not yet read) and do something to the
//! scanner then — kill it, restart it — before letting the bytes through.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::http::{Request, Server, respond};

/// Proxies GET and HEAD requests to `upstream`; blob GETs wait while the proxy is held.
#[derive(Debug)]
pub struct HoldingProxy {
    server: Server,
    hold: Arc<AtomicBool>,
    waiting: Arc<AtomicUsize>,
}

impl HoldingProxy {
    /// Starts on a free loopback port, holding blob downloads from the start when `held`.
    pub fn start(upstream: SocketAddr, held: bool) -> Result<HoldingProxy> {
        let hold = Arc::new(AtomicBool::new(held));
        let waiting = Arc::new(AtomicUsize::new(0));
        let (h, w) = (hold.clone(), waiting.clone());
        let server = Server::start(
            "holding proxy",
            Arc::new(move |stream: &TcpStream, req: Request, stop: &AtomicBool| {
                if req.method == "GET" && req.path().contains("/blobs/") {
                    w.fetch_add(1, Ordering::SeqCst);
                    while h.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    w.fetch_sub(1, Ordering::SeqCst);
                }
                if let Err(e) = forward(stream, &req, upstream) {
                    let _ = respond(stream, 502, &[], e.to_string().as_bytes());
                }
            }),
        )?;
        Ok(HoldingProxy {
            server,
            hold,
            waiting,
        })
    }

    /// `127.0.0.1:PORT`, the registry host to name in references.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// Holds blob downloads from now on.
    pub fn hold(&self) {
        self.hold.store(true, Ordering::SeqCst);
    }

    /// Lets held and future blob downloads through.
    pub fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
    }

    /// Blob downloads waiting right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

fn forward(client: &TcpStream, req: &Request, upstream: SocketAddr) -> io::Result<()> {
    if req.method != "GET" && req.method != "HEAD" {
        return respond(client, 405, &[], b"read-only proxy");
    }
    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if k != "connection" && k != "keep-alive" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    // One request per connection, so every request passes through the hold check.
    head.push_str("connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    let mut out = client;
    io::copy(&mut up, &mut out)?;
    out.flush()
}
