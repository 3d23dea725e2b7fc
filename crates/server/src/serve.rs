//! Starting and stopping the service: open the store, bind both listeners, start workers, the
//! notifier and the re-evaluation of stale verdicts; on shutdown stop intake first, let running
//! scans finish (or release them), then close the admin port and the store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

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

/// How often finished jobs, events and notifications past `[retention] finished` are deleted.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

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
            post(api::scan).layer(DefaultBodyLimit::max(api::MAX_SCAN_BODY_BYTES)),
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
        .with_state(app)
}

/// Opens everything `settings` names and builds the shared state.
pub async fn open(settings: Settings) -> Result<Arc<App>, ServeError> {
    let mkdir = |path: &std::path::Path| {
        std::fs::create_dir_all(path).map_err(|source| ServeError::Dir {
            path: path.to_path_buf(),
            source,
        })
    };
    mkdir(&settings.cache_dir)?;
    let store = match &settings.database {
        Database::SqliteFile(path) => {
            mkdir(&settings.data_dir)?;
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
    // Pods' imagePullSecrets are read only by the admission webhook, only inside a cluster.
    let kube = if settings.admission.is_some() {
        crate::admission::pull_secrets::KubeApi::from_env().map_err(ServeError::Kube)?
    } else {
        None
    };
    if settings.admission.is_some() && kube.is_none() {
        tracing::info!("not in a Kubernetes cluster: pods' imagePullSecrets will not be read");
    }
    let pull_secrets = crate::admission::pull_secrets::PullSecrets::new(kube);
    Ok(App::new(settings, store, gate, pull_secrets))
}

/// Runs the service until `shutdown` resolves, then drains and returns.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    for source in settings.open_endpoints() {
        tracing::warn!(
            endpoint = format!("/webhooks/{}", source.as_str()),
            listen = %settings.listen,
            "webhook endpoint accepts unauthenticated callers on a non-loopback listener; set webhooks.{}.auth",
            source.as_str()
        );
    }
    if settings.open_api() {
        tracing::warn!(
            listen = %settings.listen,
            "the API (/v1/…) accepts unauthenticated callers on a non-loopback listener; set [api.auth]"
        );
    }
    let (listen, admin_listen) = (settings.listen, settings.admin_listen);
    let public = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let admin = TcpListener::bind(admin_listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: admin_listen,
            source,
        })?;
    let admission = match &settings.admission {
        Some(a) => {
            let cert = crate::tls::ReloadingCert::new(&a.tls_cert, &a.tls_key)?;
            let config = crate::tls::server_config(Arc::clone(&cert))?;
            let listener =
                TcpListener::bind(a.listen)
                    .await
                    .map_err(|source| ServeError::Bind {
                        addr: a.listen,
                        source,
                    })?;
            Some((listener, config, cert))
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
    {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            match judge::reevaluate_stale(&app).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    results = n,
                    "re-evaluated stored verdicts under the current policy bundle"
                ),
                Err(e) => tracing::warn!(error = %e, "re-evaluating stored verdicts failed"),
            }
        });
    }

    if let Some((listener, config, cert)) = admission {
        let stop = Arc::clone(&app);
        tasks.spawn(cert.watch(async move { stop.drained().await }));
        let stop = Arc::clone(&app);
        tasks.spawn(crate::tls::serve(
            listener,
            config,
            crate::admission::router(Arc::clone(&app)),
            async move { stop.drained().await },
        ));
    }

    if let Some(age) = app.settings.retention {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            let mut every = tokio::time::interval(PRUNE_EVERY);
            loop {
                tokio::select! {
                    () = app.drained() => return,
                    _ = every.tick() => {}
                }
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
        });
    }

    let admin_server = {
        let app = Arc::clone(&app);
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = Arc::clone(&stop);
        let handle = tokio::spawn(async move {
            axum::serve(admin, admin::router(app))
                .with_graceful_shutdown(async move { stopped.notified().await })
                .await
        });
        (handle, stop)
    };

    let drain_app = Arc::clone(&app);
    let served = axum::serve(public, router(Arc::clone(&app)))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutdown requested: stopping intake, finishing running scans");
            drain_app.drain();
        })
        .await;
    // Intake has stopped (or failed): make sure everything else drains too.
    app.drain();
    while tasks.join_next().await.is_some() {}
    admin_server.1.notify_one();
    if let Ok(Err(e)) = admin_server.0.await {
        tracing::warn!(error = %e, "admin listener failed");
    }
    app.store.close().await;
    tracing::info!("gantry serve stopped");
    served.map_err(ServeError::Http)
}
