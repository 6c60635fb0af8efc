//! Building and running the whole service: store, engine, HTTP server.

use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};

use crate::actors::Engine;
use crate::config::{Settings, StorageBackend};
use crate::http::{AppState, JournalWriter, Serves, routes};
use crate::model::audit::{AuditRecord, Outcome, REDACTED};
use crate::secret_box::{KeySource, SecretBox};
use crate::store::{Backend, DisabledByHookd, EmbeddedStore, OpenError, StoreError};

/// Why hookd could not start. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot reach Redis at {url} ({cause}).\n\
         hookd needs Redis 7 or newer there. Start one (e.g. `apt-get install redis-server` \
         then `redis-server`), or point redis.url / HOOKD_REDIS__URL at yours."
    )]
    RedisUnreachable { url: String, cause: StoreError },
    #[error("storage.backend = \"embedded\": {0}")]
    DataDirectory(OpenError),
    #[error("cannot prepare storage: {0}")]
    Prepare(StoreError),
    #[error("cannot listen on {addr}: {cause}")]
    Bind { addr: String, cause: std::io::Error },
    #[error("endpoint secrets: {0}")]
    Secrets(String),
    #[error("server.tls: {0}")]
    Tls(#[from] crate::http::tls::TlsError),
}

/// A bound, running hookd. Tests build it on port 0 and read the port back.
pub struct Application {
    /// The port of the webhooks' listener.
    port: u16,
    /// Every listener's port and what it serves; the webhooks' first.
    ports: Vec<(Serves, u16)>,
    /// The HTTPS listener's port, when there is one.
    tls_port: Option<u16>,
    store: Arc<dyn Backend>,
    /// The webhooks' server first.
    servers: Vec<Server>,
    engine: Engine,
    /// Tells the streams to end when hookd begins to stop.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// Resolves on SIGTERM or Ctrl-C (listening since `build` began).
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Application {
    /// Opens storage, starts the actors and binds the listener. Must run inside an actix
    /// system.
    pub async fn build(mut settings: Settings) -> Result<Application, StartError> {
        let shutdown = shutdown_signal();
        let store = open_storage(&settings).await?;
        match store.production_warnings().await {
            Ok(warnings) => {
                for w in warnings {
                    tracing::warn!("{w}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not inspect the storage configuration"),
        }
        store.prepare().await.map_err(StartError::Prepare)?;
        // Signing with a secret the key cannot open would send garbage signatures.
        if let Err(StoreError::Secret(e)) = store.list_endpoints().await {
            return Err(StartError::Secrets(e));
        }
        if let Some(key) = settings.ensure_admin_key() {
            tracing::warn!(
                "api.admin_key is not set; generated one for this run: {key} \
                 (set HOOKD_API__ADMIN_KEY to keep a key across restarts)"
            );
        }

        let listeners = bind_listeners(&settings)?;
        let port = listeners[0].1.local_addr().map(|a| a.port()).unwrap_or(0);
        let tls = match settings.server.tls.listen {
            Some(_) => Some(crate::http::tls::Tls::new(&settings.server.tls)?),
            None => None,
        };

        let prometheus = crate::metrics::install();
        crate::metrics::register_zero_series(settings.sources.keys().map(String::as_str));
        let engine = Engine::start(&settings, store.clone(), prometheus.clone())
            .await
            .map_err(StartError::Prepare)?;
        if settings.sources.is_empty() {
            tracing::warn!(
                "no sources configured: POST /webhooks/* answers 404 until one is \
                 (see [sources] in config/default.toml)"
            );
        }
        // From here on the admin key is only held as its hash.
        let admin_key =
            crate::http::auth::AdminKey::new(&std::mem::take(&mut settings.api.admin_key));
        let settings = Arc::new(settings);
        let state_store = store.clone();
        let state = web::Data::new(AppState::new(
            settings.clone(),
            admin_key,
            store,
            engine.clone(),
            prometheus,
        ));
        let mut servers = Vec::with_capacity(listeners.len());
        let mut ports = Vec::with_capacity(listeners.len());
        let mut tls_port = None;
        for (serves, listener, secure) in listeners {
            let local = listener.local_addr().map_err(|cause| StartError::Bind {
                addr: format!("{serves:?}"),
                cause,
            })?;
            let (state, engine) = (state.clone(), engine.clone());
            let mut server = HttpServer::new(move || {
                let mut app = App::new()
                    .app_data(state.clone())
                    .wrap(actix_web::middleware::Compress::default());
                // Test suites send their samples through the API's listener.
                if serves.webhooks || serves.api {
                    // Runs once per worker, on the worker's thread: each gets a journal
                    // writer there.
                    app =
                        app.app_data(web::Data::new(JournalWriter(engine.start_journal_writer())));
                }
                app.configure(|cfg| routes(cfg, serves))
            })
            .shutdown_timeout(settings.server.shutdown_timeout.as_secs())
            // actix-server would stop the whole actix system on a signal, killing the engine
            // before it drained; `run_until_stopped` handles signals itself.
            .disable_signals();
            let bound = match (&tls, secure) {
                (Some(tls), true) => {
                    tls_port = Some(local.port());
                    server
                        .on_connect(tls.on_connect())
                        .listen_rustls_0_23(listener, tls.config.clone())
                }
                _ => server.listen(listener),
            };
            server = bound.map_err(|cause| StartError::Bind {
                addr: local.to_string(),
                cause,
            })?;
            if serves.webhooks {
                if settings.server.workers > 0 {
                    server = server.workers(settings.server.workers);
                }
                let scheme = if secure { "https" } else { "http" };
                for name in settings.sources.keys() {
                    tracing::info!(source = %name, url = %format!("{scheme}://{local}/webhooks/{name}"), "webhook source");
                }
            } else {
                // The API and metrics are light next to the webhooks: one worker.
                server = server.workers(1);
            }
            tracing::info!(address = %local, serves = ?serves.names(), https = secure, "listening");
            if !secure {
                ports.push((serves, local.port()));
            }
            servers.push(server.run());
        }
        if let Some(tls) = &tls {
            let every = settings.server.tls.reload_interval;
            actix_web::rt::spawn(crate::http::tls::keep_fresh(tls.server_cert.clone(), every));
        }
        tracing::info!(
            port,
            sources = settings.sources.len(),
            storage = %storage_description(&settings),
            "hookd is ready"
        );
        Ok(Application {
            closing: state.closing.clone(),
            port,
            ports,
            tls_port,
            store: state_store,
            servers,
            engine,
            shutdown,
        })
    }

    /// The storage this hookd uses (tests read its gauges).
    pub fn store(&self) -> Arc<dyn Backend> {
        self.store.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTPS listener's port (`server.tls.listen`).
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The port of the listener that serves `what` (its own, or the webhooks').
    pub fn port_of(&self, what: fn(Serves) -> bool) -> u16 {
        self.ports
            .iter()
            .find(|(serves, _)| what(*serves))
            .map_or(self.port, |(_, p)| *p)
    }

    /// Stops the server gracefully (what SIGTERM does); the other listeners follow.
    pub fn handle(&self) -> ServerHandle {
        self.servers[0].handle()
    }

    /// Serves until SIGTERM/Ctrl-C (or [`ServerHandle::stop`]), lets in-flight requests finish
    /// (each waits for its journal write), then drains the normalizer.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut servers = self.servers.into_iter();
        let Some(main) = servers.next() else {
            return Ok(());
        };
        let others: Vec<Server> = servers.collect();
        let handle = main.handle();
        let closing = self.closing.clone();
        let shutdown = self.shutdown;
        actix_web::rt::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown signal received; finishing in-flight requests");
            closing.send_replace(true);
            handle.stop(true).await;
        });
        let other_handles: Vec<ServerHandle> = others.iter().map(Server::handle).collect();
        let others = others
            .into_iter()
            .map(actix_web::rt::spawn)
            .collect::<Vec<_>>();
        let served = main.await;
        for h in other_handles {
            h.stop(true).await;
        }
        for o in others {
            let _ = o.await;
        }
        tracing::info!("HTTP server stopped; draining the engine");
        self.engine.shutdown().await;
        tracing::info!("hookd stopped");
        served
    }
}

/// Binds `server.listen` (webhooks, and the API and metrics unless they have their own),
/// `api.listen` / `metrics.listen` when set (one listener when they are the same address), and
/// `server.tls.listen`, serving what `server.listen` serves over HTTPS (marked true).
fn bind_listeners(settings: &Settings) -> Result<Vec<(Serves, TcpListener, bool)>, StartError> {
    let mut wanted: Vec<(std::net::SocketAddr, Serves)> = vec![(
        settings.server.listen,
        Serves {
            webhooks: true,
            api: settings.api.listen.is_none(),
            metrics: settings.metrics.listen.is_none(),
        },
    )];
    let mut add = |addr: std::net::SocketAddr, set: fn(&mut Serves)| {
        // Port 0 binds a listener of its own each time.
        match wanted
            .iter_mut()
            .find(|(a, _)| *a == addr && addr.port() != 0)
        {
            Some((_, serves)) => set(serves),
            None => {
                let mut serves = Serves::default();
                set(&mut serves);
                wanted.push((addr, serves));
            }
        }
    };
    if let Some(addr) = settings.api.listen {
        add(addr, |s| s.api = true);
    }
    if let Some(addr) = settings.metrics.listen {
        add(addr, |s| s.metrics = true);
    }
    let main = wanted[0].1;
    let tls = settings.server.tls.listen.map(|addr| (addr, main, true));
    wanted
        .into_iter()
        .map(|(addr, serves)| (addr, serves, false))
        .chain(tls)
        .map(|(addr, serves, secure)| {
            TcpListener::bind(addr)
                .map(|l| (serves, l, secure))
                .map_err(|cause| StartError::Bind {
                    addr: addr.to_string(),
                    cause,
                })
        })
        .collect()
}

/// Listens for SIGTERM and Ctrl-C from now on and resolves on the first. Called before any
/// listener serves: a signal sent once hookd answers is never left to its default action.
fn shutdown_signal() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut listening = Vec::new();
        for kind in [SignalKind::terminate(), SignalKind::interrupt()] {
            match signal(kind) {
                Ok(s) => listening.push(s),
                Err(e) => tracing::warn!(error = %e, "cannot listen for a shutdown signal"),
            }
        }
        Box::pin(async move {
            if listening.is_empty() {
                return std::future::pending().await;
            }
            let waits = listening.iter_mut().map(|s| Box::pin(s.recv()));
            futures_util::future::select_all(waits).await;
        })
    }
    #[cfg(not(unix))]
    Box::pin(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    })
}

/// The key that seals endpoint secrets, said in the log where it came from.
fn secret_box(settings: &Settings) -> Result<Arc<SecretBox>, StartError> {
    let (secrets, source) =
        SecretBox::load(settings).map_err(|e| StartError::Secrets(e.to_string()))?;
    match source {
        KeySource::Setting => {
            tracing::info!("endpoint secrets sealed with security.encryption_key")
        }
        KeySource::File(path) => {
            tracing::info!(key_file = %path.display(), "endpoint secrets sealed with the key file")
        }
        KeySource::Generated(path) => tracing::warn!(
            key_file = %path.display(),
            "generated a new key for endpoint secrets; back it up apart from the data: \
             without it, stored secrets cannot be read"
        ),
    }
    Ok(Arc::new(secrets))
}

/// Seals every stored secret under the current key (`hookd reencrypt`): after a key
/// rotation, or to seal secrets stored before encryption: endpoint secrets and Page tokens.
/// Returns how many endpoints and how many tokens.
pub async fn reencrypt(settings: &Settings) -> Result<(usize, usize), StartError> {
    let store = open_storage(settings).await?;
    let unusable = |e: StoreError| match e {
        StoreError::Secret(e) => StartError::Secrets(e),
        other => StartError::Prepare(other),
    };
    let record = |action: &str, object_id: &str, tenant_id: &str, field: &str| AuditRecord {
        id: String::new(),
        at: crate::time::unix_ms(),
        actor: "command:reencrypt".into(),
        address: String::new(),
        method: String::new(),
        route: String::new(),
        action: action.into(),
        object_id: object_id.into(),
        tenant_id: tenant_id.into(),
        changes: serde_json::json!({ field: { "from": REDACTED, "to": REDACTED } }),
        outcome: Outcome::Applied,
        status: None,
        error: None,
    };
    let endpoints = store.list_endpoints().await.map_err(unusable)?;
    for live in &endpoints {
        let e = &live.endpoint;
        let audit = record("endpoint.secret_reencrypt", &e.id, &e.tenant_id, "secret");
        store
            .put_endpoint(e, DisabledByHookd::Keep, &audit)
            .await
            .map_err(unusable)?;
    }
    let tokens = store.page_tokens(None).await.map_err(unusable)?;
    for token in &tokens {
        let audit = record(
            "graph.page_token_reencrypt",
            &token.page_id,
            "",
            "access_token",
        );
        store
            .put_page_token(token, &audit)
            .await
            .map_err(unusable)?;
    }
    Ok((endpoints.len(), tokens.len()))
}

/// The configured backend, opened and answering.
pub async fn open_storage(settings: &Settings) -> Result<Arc<dyn Backend>, StartError> {
    let secrets = secret_box(settings)?;
    match settings.storage.backend {
        StorageBackend::Embedded => Ok(Arc::new(
            EmbeddedStore::open(settings, secrets).map_err(StartError::DataDirectory)?,
        )),
        StorageBackend::Redis => {
            let unreachable = |cause| StartError::RedisUnreachable {
                url: settings.redis.url.clone(),
                cause,
            };
            let store = crate::store::open_redis(settings, secrets).map_err(unreachable)?;
            store.ping().await.map_err(unreachable)?;
            Ok(store)
        }
    }
}

/// Which storage is in use, and how durable, for the start-up log and `check-config`.
pub fn storage_description(settings: &Settings) -> String {
    let s = &settings.storage;
    match s.backend {
        StorageBackend::Embedded => {
            let dir = std::path::absolute(&s.path).unwrap_or_else(|_| s.path.clone());
            let sync = match s.sync {
                crate::config::StorageSync::Always => "fsync before each answer".to_string(),
                crate::config::StorageSync::Interval => {
                    format!("fsync within {:?} of each answer", s.sync_interval)
                }
            };
            format!("embedded in {} ({sync})", dir.display())
        }
        StorageBackend::Redis => format!(
            "redis at {}",
            crate::config::redact_url_password(&settings.redis.url)
        ),
    }
}
