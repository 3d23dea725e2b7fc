//! The admin port: `/healthz` (the process answers), `/readyz` (it can take work: the store
//! answers and it is not shutting down), `/metrics` (Prometheus text). On its own listener so
//! it can be kept off the network the registries reach. The probes are open (they say nothing
//! about images); `/metrics` takes `[admin.auth]` (default `[auth]`), as Prometheus scrapes
//! with a bearer token.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;

/// The admin router.
pub fn router(app: Arc<App>) -> Router {
    let metrics = Router::new().route("/metrics", get(metrics)).route_layer(
        axum::middleware::from_fn_with_state(Arc::clone(&app), authenticate),
    );
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(metrics)
        .with_state(app)
}

async fn authenticate(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let auth = &app.settings.admin_auth;
    let headers = crate::intake::Headers::new(request.headers(), request.uri().query());
    match auth.verify(&headers, &[]) {
        Ok(()) => next.run(request).await,
        Err(e) => crate::app::ApiError::unauthorized(&e, auth).into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let counts = match app.store.counts().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count jobs");
            None
        }
    };
    match app.store.count_outdated_bases().await {
        Ok(n) => app.metrics.set_outdated_bases(n),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count outdated bases"),
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        app.metrics.render(counts),
    )
        .into_response()
}
