//! A minimal HTTP/1.1 server on a std `TcpListener`, shared by the token server and the
//! faulty registry. One thread per connection, `Connection: close` on every answer: these
//! servers see a handful of requests per test, so simplicity beats throughput.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{IoContext, Result};

/// Largest request head read; anything bigger is a broken client.
const MAX_HEAD: u64 = 64 * 1024;
/// Largest request body drained before answering (so the client sees our status instead of
/// a reset); larger bodies are left unread and the connection closed.
const MAX_DRAIN: u64 = 64 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path and query, as sent.
    pub(crate) target: String,
    /// Names lowercased.
    pub(crate) headers: Vec<(String, String)>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Query parameters, percent-decoded, in order (repeated keys kept: `scope` may repeat).
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect()
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one request head and drains a small body.
pub(crate) fn read_request(stream: &TcpStream) -> io::Result<Option<Request>> {
    let mut r = BufReader::new(stream.take(MAX_HEAD));
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let req = Request {
        method,
        target,
        headers,
    };
    let len: u64 = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len > 0 && len <= MAX_DRAIN {
        // Whatever the BufReader already buffered counts towards the body.
        let buffered = r.buffer().len() as u64;
        let mut rest = r.into_inner().into_inner();
        io::copy(
            &mut (&mut rest).take(len.saturating_sub(buffered)),
            &mut io::sink(),
        )?;
    }
    Ok(Some(req))
}

/// Writes a complete response and closes the exchange.
pub(crate) fn respond(
    mut stream: &TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

type Handler = dyn Fn(&TcpStream, Request, &AtomicBool) + Send + Sync + 'static;

/// A listener thread that hands each connection to `handler` on its own thread.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Binds 127.0.0.1 on a free port (kept bound: no race) and starts serving.
    pub(crate) fn start(name: &str, handler: Arc<Handler>) -> Result<Server> {
        let listener =
            TcpListener::bind("127.0.0.1:0").ctx(|| format!("binding the {name} on 127.0.0.1"))?;
        let addr = listener
            .local_addr()
            .ctx(|| format!("address of the {name}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("testkit-{name}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let (h, f) = (handler.clone(), flag.clone());
                    std::thread::spawn(move || {
                        // A silent client must not pin the thread forever.
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        if let Ok(Some(req)) = read_request(&stream) {
                            h(&stream, req, &f);
                        }
                    });
                }
            })
            .ctx(|| format!("spawning the {name} thread"))?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query() {
        let r = Request {
            method: "GET".into(),
            target: "/token?service=gantry-test&scope=repository%3Aa%2Fb%3Apull%2Cpush&x".into(),
            headers: vec![],
        };
        assert_eq!(r.path(), "/token");
        let q = r.query();
        assert_eq!(
            q[1],
            ("scope".to_string(), "repository:a/b:pull,push".to_string())
        );
        assert_eq!(q[2], ("x".to_string(), String::new()));
        assert_eq!(decode("100%"), "100%");
    }
}
