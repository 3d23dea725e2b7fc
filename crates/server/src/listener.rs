//! Every listener of the service — API and webhooks, admin, admission (TLS) — is served by
//! [`serve`]: one accept loop over hyper with the limits a listener facing the network needs,
//! which axum's own `serve` does not set:
//!
//! - at most `max_connections` open connections: further clients wait in the kernel's accept
//!   backlog instead of each costing a task and buffers;
//! - a TLS handshake and each request's headers must arrive within `header_timeout` — also the
//!   wait for the next request on a kept-alive connection — so a client that opens a
//!   connection and sends nothing, or a byte at a time, is cut off (slowloris);
//! - on shutdown, open connections finish their requests and are then closed, and whatever is
//!   still open at the deadline is dropped: a stuck client cannot hold up a rolling update.
//!
//! Each request carries a [`Peer`] extension: the remote address (for per-caller limits) and
//! whether the client presented a certificate the TLS configuration verified.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::HttpLimits;

/// Who is at the other end of a request's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client presented a certificate that the listener's client verifier accepted.
    pub client_certificate: bool,
}

/// Serves `router` on `listener` (over TLS with `tls`) until `stop` resolves; then lets open
/// connections finish for at most `limits.shutdown_deadline` and returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
    limits: HttpLimits,
    name: &'static str,
    stop: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(stop);
    loop {
        // A free slot first: over the cap, connections stay in the backlog.
        let permit = tokio::select! {
            () = &mut stop => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, addr) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                None => {
                    let peer = Peer {
                        addr,
                        client_certificate: false,
                    };
                    let conn =
                        http1(limits).serve_connection(TokioIo::new(tcp), service(router, peer));
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(listener = name, %addr, error = %e, "connection ended with an error");
                    }
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(
                        limits.header_timeout,
                        acceptor.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(listener = name, %addr, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(listener = name, %addr, "TLS handshake timed out");
                            return;
                        }
                    };
                    let peer = Peer {
                        addr,
                        client_certificate: tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .is_some_and(|c| !c.is_empty()),
                    };
                    let conn =
                        http1(limits).serve_connection(TokioIo::new(tls), service(router, peer));
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(listener = name, %addr, error = %e, "connection ended with an error");
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open at the shutdown deadline; closing them"
        );
    }
}

fn http1(limits: HttpLimits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Headers bigger than this are no webhook, review or API call.
        .max_buf_size(64 * 1024);
    builder
}

/// The router as a hyper service, with the [`Peer`] in every request's extensions.
fn service(router: Router, peer: Peer) -> WithPeer {
    WithPeer { router, peer }
}

#[derive(Debug, Clone)]
struct WithPeer {
    router: Router,
    peer: Peer,
}

impl hyper::service::Service<hyper::Request<Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = tower::util::Oneshot<Router, hyper::Request<axum::body::Body>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.peer);
        self.router
            .clone()
            .oneshot(request.map(axum::body::Body::new))
    }
}
