//! Starting and stopping the service: open the store, bind both listeners, start workers, the
//! notifier and the re-evaluation of stale verdicts; on shutdown stop intake first, let running
//! scans finish (or release them), then close the admin port and the store.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use gantry_gate::Gate;
use gantry_scan::{LayerCache, ScanOptions, Scanner};
use gantry_store::{DirLayerCache, Store};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::app::{ApiError, App};
use crate::config::{Database, Settings};
use crate::{admin, api, intake, judge, notify, worker};

/// How often finished jobs, events and notifications past `[retention] finished`, and images
/// past `[retention] results`, are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often verdicts that expired are judged again from their facts: an exception's expiry
/// takes effect within this much, even for images nobody asks about.
const REEVALUATE_EVERY: Duration = Duration::from_secs(60);

/// Why the service could not start (or stopped with an error).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("creating {path}: {source}")]
    Dir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the store: {0}")]
    Store(#[from] gantry_store::StoreError),
    #[error("setting up the scanner: {0}")]
    Scanner(#[from] gantry_scan::ScanError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
    #[error("Kubernetes API: {0}")]
    Kube(String),
    #[error("admission TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// The public router: webhooks and the API.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/v1/images", get(api::images))
        .route("/v1/images/{digest}/verdict", get(api::verdict))
        .route("/v1/images/{digest}/report", get(api::report))
        .route("/v1/images/{digest}/sbom", get(api::sbom))
        .route(
            "/v1/scan",
            // The handler reads (and caps) the body itself, within the body timeout.
            post(api::scan).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/jobs/{id}", get(api::job))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            api::authenticate,
        ));
    Router::new()
        .route("/webhooks/{sender}", post(intake::receive))
        .merge(api)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(caught_panics())
        .with_state(app)
}

/// A panic in a handler is a bug: answer 500 in the usual envelope (and log it) instead of
/// dropping the connection.
pub(crate) fn caught_panics() -> tower_http::catch_panic::CatchPanicLayer<
    fn(Box<dyn std::any::Any + Send>) -> axum::response::Response,
> {
    fn answer(panic: Box<dyn std::any::Any + Send>) -> axum::response::Response {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        tracing::error!(panic = %what, "a request handler panicked");
        axum::response::IntoResponse::into_response(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "internal error",
        ))
    }
    tower_http::catch_panic::CatchPanicLayer::custom(answer as fn(_) -> _)
}

/// Creates `path` (and its parents) readable by Gantry's user only: it holds the database and
/// what was learnt about every image.
fn private_dir(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| ServeError::Dir {
            path: path.to_path_buf(),
            source,
        })
}

/// The SQLite file and its WAL and shared-memory files, created (or kept) mode 0600: SQLite
/// gives the `-wal` and `-shm` files the mode of the database file.
fn private_sqlite(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let dir_err = |source| ServeError::Dir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(dir_err)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(dir_err)?;
        }
    }
    Ok(())
}

/// Opens everything `settings` names and builds the shared state.
pub async fn open(settings: Settings) -> Result<Arc<App>, ServeError> {
    private_dir(&settings.cache_dir)?;
    let store = match &settings.database {
        Database::SqliteFile(path) => {
            private_dir(&settings.data_dir)?;
            private_sqlite(path)?;
            Store::open_sqlite(path).await?
        }
        Database::Url(url) => Store::open(url).await?,
    };
    let mut options = ScanOptions {
        limits: settings.layer_limits,
        ..ScanOptions::default()
    };
    if let Some(n) = settings.parallel_layers {
        options.parallel_layers = n;
    }
    let cache: Arc<dyn LayerCache> = Arc::new(DirLayerCache::new(&settings.cache_dir));
    let scanner = Scanner::new(options, Some(cache))?;
    let mut gate = Gate::new(scanner, Arc::clone(&settings.policy));
    if settings.base_lookup {
        gate = gate.with_base_lookup(settings.registry.options_for(""));
    }
    // Pods' imagePullSecrets are read only for the admission webhook, only inside a cluster.
    let kube = match &settings.admission {
        Some(a) if matches!(a.clients, crate::tls::ClientAuth::Verify { .. }) => {
            crate::admission::pull_secrets::KubeApi::from_env().map_err(ServeError::Kube)?
        }
        _ => None,
    };
    match &settings.admission {
        Some(a) if matches!(a.clients, crate::tls::ClientAuth::Anyone) => tracing::warn!(
            "admission.allow_unauthenticated_clients: reviews are taken from any client, so pods' imagePullSecrets are not read (docs/admission.md)"
        ),
        Some(_) if kube.is_none() => {
            tracing::info!("not in a Kubernetes cluster: pods' imagePullSecrets will not be read")
        }
        _ => {}
    }
    let pull_secrets = crate::admission::pull_secrets::PullSecrets::new(kube);
    Ok(App::new(settings, store, gate, pull_secrets))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Runs the service until `shutdown` resolves, then drains and returns — at the latest
/// `http.shutdown_deadline` after `shutdown` resolved, whatever is still running.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    for source in settings.open_endpoints() {
        tracing::warn!(
            endpoint = format!("/webhooks/{}", source.as_str()),
            listen = %settings.listen,
            "webhook endpoint accepts anonymous callers on a non-loopback listener (configured so on purpose)"
        );
    }
    let limits = settings.http;
    let public = bind(settings.listen).await?;
    let admin = bind(settings.admin_listen).await?;
    let admission = match &settings.admission {
        Some(a) => {
            let cert = crate::tls::ReloadingCert::new(&a.tls_cert, &a.tls_key)?;
            let config = crate::tls::server_config(Arc::clone(&cert), &a.clients)?;
            Some((bind(a.listen).await?, config, cert))
        }
        None => None,
    };
    let app = open(settings).await?;
    let public_addr = public.local_addr().map_err(ServeError::Http)?;
    let admin_addr = admin.local_addr().map_err(ServeError::Http)?;
    let admission_addr = match &admission {
        Some((l, _, _)) => Some(l.local_addr().map_err(ServeError::Http)?),
        None => None,
    };
    tracing::info!(
        api = %public_addr,
        admin = %admin_addr,
        admission = %admission_addr.map_or_else(|| "off".to_string(), |a| a.to_string()),
        store = %app.settings.database.describe(),
        policy = app.policy_digest(),
        workers = app.settings.workers.concurrency,
        "gantry serve listening"
    );

    let mut tasks = JoinSet::new();
    if app.settings.workers.concurrency == 0 {
        tracing::warn!(
            "workers.concurrency = 0: this replica scans nothing; jobs wait for other replicas"
        );
    }
    for i in 0..app.settings.workers.concurrency {
        tasks.spawn(worker::run(Arc::clone(&app), worker::worker_name(i)));
    }
    tasks.spawn(notify::run(
        Arc::clone(&app),
        worker::worker_name(usize::MAX),
    ));
    tasks.spawn(reevaluate(Arc::clone(&app)));
    tasks.spawn(housekeeping(Arc::clone(&app)));
    if app.settings.base_freshness.is_some() {
        tasks.spawn(base_checks(Arc::clone(&app)));
    }

    let mut listeners = JoinSet::new();
    if let Some((listener, config, cert)) = admission {
        let stop = Arc::clone(&app);
        tasks.spawn(cert.watch(async move { stop.drained().await }));
        let stop = Arc::clone(&app);
        listeners.spawn(crate::listener::serve(
            listener,
            Some(config),
            crate::admission::router(Arc::clone(&app)),
            limits,
            "admission",
            async move { stop.drained().await },
        ));
    }
    {
        let stop = Arc::clone(&app);
        listeners.spawn(crate::listener::serve(
            public,
            None,
            router(Arc::clone(&app)),
            limits,
            "api",
            async move { stop.drained().await },
        ));
    }
    let admin_stop = Arc::new(tokio::sync::Notify::new());
    let admin_server = {
        let stopped = Arc::clone(&admin_stop);
        tokio::spawn(crate::listener::serve(
            admin,
            None,
            admin::router(Arc::clone(&app)),
            limits,
            "admin",
            async move { stopped.notified().await },
        ))
    };

    shutdown.await;
    tracing::info!("shutdown requested: stopping intake, finishing running scans");
    app.drain();
    let deadline = tokio::time::Instant::now() + limits.shutdown_deadline;
    let drained = tokio::time::timeout_at(deadline, async {
        while listeners.join_next().await.is_some() {}
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            deadline = ?limits.shutdown_deadline,
            "still busy at the shutdown deadline; stopping anyway (running jobs are retaken after their lease)"
        );
        listeners.abort_all();
        tasks.abort_all();
    }
    admin_stop.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(1), admin_server).await;
    app.store.close().await;
    tracing::info!("gantry serve stopped");
    Ok(())
}

/// Re-judges stored facts whose verdict is missing under the current bundle (at startup) or
/// expired (an exception ran out; `scan.verdict_ttl`), then every minute.
async fn reevaluate(app: Arc<App>) {
    let mut every = tokio::time::interval(REEVALUATE_EVERY);
    loop {
        tokio::select! {
            () = app.drained() => return,
            _ = every.tick() => {}
        }
        match judge::reevaluate_stale(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                verdicts = n,
                "re-judged stored facts (policy bundle changed or verdicts expired)"
            ),
            Err(e) => tracing::warn!(error = %e, "re-evaluating stored verdicts failed"),
        }
    }
}

/// Checks the base tags that are due, every minute (or every `[base_freshness] interval` when
/// shorter), then re-judges the images whose freshness changed.
async fn base_checks(app: Arc<App>) {
    let period = app
        .settings
        .base_freshness
        .map_or(REEVALUATE_EVERY, |b| b.interval.min(REEVALUATE_EVERY));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = app.drained() => return,
            _ = every.tick() => {}
        }
        match crate::freshness::check_due(&app).await {
            Ok(round) if round.changed > 0 => {
                tracing::info!(
                    checked = round.checked,
                    failed = round.failed,
                    changed = round.changed,
                    "checked base image tags"
                );
                if let Err(e) = judge::reevaluate_stale(&app).await {
                    tracing::warn!(error = %e, "re-evaluating stored verdicts failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "checking base image tags failed; will try again"),
        }
    }
}

/// Hourly retention, and forgetting quiet callers of the rate limiter.
async fn housekeeping(app: Arc<App>) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            () = app.drained() => return,
            _ = every.tick() => {}
        }
        app.rate.forget_quiet();
        if let Some(age) = app.settings.retention {
            match app.store.prune(age).await {
                Ok(p) if p == gantry_store::Pruned::default() => {}
                Ok(p) => tracing::info!(
                    jobs = p.jobs,
                    events = p.events,
                    notifications = p.notifications,
                    "pruned finished bookkeeping"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning failed; will try again"),
            }
        }
        if let Some(age) = app.settings.results_retention {
            match app.store.prune_results(age).await {
                Ok(p) if p == gantry_store::PrunedResults::default() => {}
                Ok(p) => tracing::info!(
                    reports = p.reports,
                    sboms = p.sboms,
                    tags = p.tags,
                    "pruned images not seen within [retention] results"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning results failed; will try again"),
            }
        }
    }
}
