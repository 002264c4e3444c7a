//! Wiring: `App::build(config)` connects the adapters and services; `serve(listener, shutdown)`
//! runs the HTTP server until `shutdown` resolves, then drains. No global state: several
//! instances can run in one process (the tests do).

use crate::secrets;
use anyhow::Context;
use axum::Router;
use sc_api::state::AppState;
use sc_api::tls;
use sc_core::{
    config::{Config, DatabaseKind},
    ids::SessionId,
};
use sc_db::Db;
use sc_infra::{
    blobs::{self, BlobStore},
    bus::{Bus, BusEvent},
    mailer::Mailer,
    ratelimit::RateLimiter,
    redis_link::RedisLink,
};
use sc_service::{
    AuthService, CONVERSATION_CHANGED_CHANNEL, Deps, SESSION_BANNED_CHANNEL,
    SESSION_CHANGED_CHANNEL, SESSION_REVOKED_CHANNEL, USER_CHANGED_CHANNEL, UserService,
    calls::CallService,
    chat::ChatService,
    crypto::{JwtKeys, SecretBox},
    drive::DriveService,
    mail::MailService,
    metrics::Metrics,
    notify::NotifyService,
    password::PasswordHasher,
    realtime::{
        CLOSE_BANNED, CLOSE_RESTARTING, CLOSE_SESSION_ENDED, Envelope, Hub, PRESENCE_RENEW_EVERY,
        REALTIME_CHANNEL, RealtimeService,
    },
    session_cache::{ConversationCache, SessionCache, UserCache},
};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct App {
    state: Arc<AppState>,
    router: Router,
    background: CancellationToken,
}

/// Connects to the configured database (SQLite in `data_dir` by default).
pub async fn connect_db(cfg: &Config) -> anyhow::Result<Db> {
    Ok(match cfg.database() {
        DatabaseKind::Sqlite(path) => {
            secrets::ensure_data_dir(&cfg.data_dir)?;
            Db::connect_sqlite(&path, cfg.database_max_connections).await?
        }
        DatabaseKind::Postgres(url) => {
            Db::connect_postgres(&url, cfg.database_max_connections).await?
        }
    })
}

impl App {
    pub async fn build(cfg: Config) -> anyhow::Result<App> {
        Self::build_with(cfg, true).await
    }

    /// For the CLI's one-off commands: no retention passes and no socket reports (a command
    /// is not an instance serving anyone).
    pub async fn build_for_command(cfg: Config) -> anyhow::Result<App> {
        Self::build_with(cfg, false).await
    }

    async fn build_with(cfg: Config, serving: bool) -> anyhow::Result<App> {
        let cfg = Arc::new(cfg);
        let jwt_secret = match &cfg.jwt_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => secrets::load_or_generate(&cfg.data_dir, "jwt_secret")?,
        };
        let data_key: [u8; 32] = match &cfg.data_key {
            Some(k) => sc_core::secret_bytes(k.expose())
                .and_then(|b| b.try_into().ok())
                .context("data_key must be 32 bytes")?,
            None => secrets::load_or_generate(&cfg.data_dir, "data_key")?
                .try_into()
                .map_err(|_| anyhow::anyhow!("data_key must be 32 bytes"))?,
        };
        let db = connect_db(&cfg).await?;
        if cfg.auto_migrate {
            db.migrate().await.context("database migration")?;
        }
        let background = CancellationToken::new();
        let redis = match &cfg.redis_url {
            Some(url) => Some(
                RedisLink::new(url.expose(), &cfg.redis_key_prefix).map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        let bus = match &redis {
            Some(link) => Bus::redis(link.clone(), background.clone()),
            None => Bus::in_process(),
        };
        let metrics = Arc::new(Metrics::new());
        let mailer = Mailer::from_config(&cfg).context("mail configuration")?;
        let mail = MailService::new(db.clone(), mailer, metrics.clone(), cfg.mail_max_attempts);
        let db_read = match &cfg.database_read_url {
            Some(url) => Db::connect_postgres(url.expose(), cfg.database_max_connections)
                .await
                .context("read replica")?,
            None => db.clone(),
        };
        let deps = Arc::new(Deps {
            cfg: cfg.clone(),
            db,
            db_read,
            bus,
            limiter: Arc::new(RateLimiter::new(redis.clone())),
            metrics,
            mail: mail.clone(),
            hasher: PasswordHasher::new(cfg.password_hash_concurrency)?,
            jwt: JwtKeys::new(&jwt_secret, &cfg.jwt_issuer, &cfg.jwt_audience),
            secret_box: SecretBox::new(&data_key),
            sessions: SessionCache::default(),
            users: UserCache::default(),
            conversations: ConversationCache::default(),
            calls: Default::default(),
            push: Arc::new(crate::push::client(&cfg)?),
            jobs_wake: Arc::new(tokio::sync::Notify::new()),
            notify_wake: Arc::new(tokio::sync::Notify::new()),
            push_wake: Arc::new(tokio::sync::Notify::new()),
        });
        mail.spawn_workers(cfg.mail_workers, background.clone());
        let hub = Arc::new(Hub::default());
        let realtime = RealtimeService::new(deps.clone());
        let notify = NotifyService::new(deps.clone());
        notify.spawn_workers(background.clone());
        spawn_event_dispatcher(deps.clone(), hub.clone(), background.clone());
        spawn_presence_renewal(realtime.clone(), hub.clone(), background.clone());
        spawn_housekeeping(deps.db.clone(), background.clone());
        // S3 when `s3_endpoint` is set, else the local disk under data_dir/blobs.
        let blobs = Arc::new(match blobs::S3Settings::from_config(&cfg) {
            Some(s3) => BlobStore::s3(s3).context("S3 blob storage")?,
            None => BlobStore::local(
                cfg.data_dir.join("blobs"),
                blobs::derive_url_signing_key(&data_key),
                cfg.public_url.clone(),
            )
            .context("blob storage directory")?,
        });
        let drive = DriveService::new(deps.clone(), blobs.clone());
        drive.spawn_cleanup(background.clone());
        let provider = match &cfg.ai_base_url {
            Some(base) => Some(Arc::new(
                sc_infra::ai::AiProvider::new(sc_infra::ai::AiConfig {
                    base_url: base.clone(),
                    api_key: cfg.ai_api_key.as_ref().map(|k| k.expose().to_string()),
                    model: cfg.ai_model.clone(),
                    image_model: cfg.ai_image_model.clone(),
                    timeout: std::time::Duration::from_secs(cfg.ai_timeout_seconds),
                    connect_timeout: std::time::Duration::from_secs(5),
                })
                .context("AI provider configuration")?,
            )),
            None => None,
        };
        let ai = sc_service::ai::AiService::new(deps.clone(), provider, drive.clone());
        ai.spawn_assistant(2, background.clone());
        let calls = CallService::new(deps.clone());
        let sweep_hub = hub.clone();
        calls.spawn_sweeper(move || sweep_hub.local_sessions(), background.clone());
        let chat = ChatService::new(deps.clone());
        chat.spawn_poll_closer(
            std::time::Duration::from_secs(cfg.poll_close_interval_seconds),
            background.clone(),
        );
        let mls = sc_service::mls::MlsService::new(deps.clone());
        let admin = sc_service::admin::AdminService::new(deps.clone());
        if serving {
            admin.spawn_retention(background.clone());
            let report_hub = hub.clone();
            admin.spawn_socket_reporter(
                uuid::Uuid::now_v7(),
                move || report_hub.socket_count(),
                background.clone(),
            );
        }
        let web = match &cfg.web_dir {
            Some(dir) => sc_api::routes::web::WebBundle::from_dir(dir)
                .with_context(|| format!("web_dir {}", dir.display()))?,
            None => sc_api::routes::web::WebBundle::embedded(),
        };
        let state = Arc::new(AppState {
            cfg: cfg.clone(),
            auth: AuthService::new(deps.clone()),
            users: UserService::new(deps.clone()),
            chat,
            realtime,
            notify,
            hub,
            deps,
            trusted_proxies: cfg.trusted_proxy_nets(),
            web_csp: sc_api::routes::web::csp_header(
                &cfg.public_url,
                blobs::S3Settings::from_config(&cfg)
                    .and_then(|s| s.client_origin())
                    .as_deref(),
            ),
            web,
            redis,
            blobs,
            drive,
            calls,
            ai,
            admin,
            mls,
            draining: Default::default(),
        });
        let router = sc_api::router(state.clone());
        Ok(App {
            state,
            router,
            background,
        })
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves on `listener` (TLS when configured) until `shutdown` resolves; in-flight requests
    /// then get `shutdown_grace_seconds` to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let cfg = self.state.cfg.clone();
        let grace = Duration::from_secs(cfg.shutdown_grace_seconds);
        let stop = CancellationToken::new();
        let stop_signal = stop.clone();
        let state = self.state.clone();
        let signal = async move {
            shutdown.await;
            state
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            // Sockets would hold the drain open until the grace period ends: tell their clients
            // to reconnect (to another instance) and catch up.
            state.hub.close_all(CLOSE_RESTARTING);
            stop_signal.cancel();
        };
        let make = self
            .router
            .into_make_service_with_connect_info::<tls::PeerAddr>();
        let server: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> =
            match (&cfg.tls_cert_file, &cfg.tls_key_file) {
                (Some(cert), Some(key)) => {
                    let tls = tls::TlsListener::new(listener, tls::server_config(cert, key)?)?;
                    Box::pin(
                        axum::serve(tls, make)
                            .with_graceful_shutdown(signal)
                            .into_future(),
                    )
                }
                _ => Box::pin(
                    axum::serve(listener, make)
                        .with_graceful_shutdown(signal)
                        .into_future(),
                ),
            };
        tokio::select! {
            r = server => r?,
            _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("shutdown grace period over; closing remaining connections");
            }
        }
        self.background.cancel();
        self.state.deps.db.close().await;
        Ok(())
    }
}

/// Hourly housekeeping (every instance runs it; the deletes are idempotent).
fn spawn_housekeeping(db: sc_db::Db, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = every.tick() => match db.purge_expired(sc_core::time::Timestamp::now()).await {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "housekeeping removed expired rows"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
                },
            }
        }
    });
}

/// Renews the presence leases of users connected to this instance.
fn spawn_presence_renewal(realtime: RealtimeService, hub: Arc<Hub>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PRESENCE_RENEW_EVERY);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = every.tick() => realtime.renew_leases(&hub.local_users()).await,
            }
        }
    });
}

/// The one consumer of the bus on this instance: hands realtime events to local sockets, and
/// keeps the caches and sockets in step with revocations announced anywhere.
fn spawn_event_dispatcher(deps: Arc<Deps>, hub: Arc<Hub>, stop: CancellationToken) {
    let mut rx = deps.bus.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => break,
                ev = rx.recv() => ev,
            };
            match ev {
                Ok(BusEvent::Message { channel, payload }) if &*channel == REALTIME_CHANNEL => {
                    match serde_json::from_str::<Envelope>(&payload) {
                        Ok(env) => hub.deliver_to(
                            &env.to,
                            env.sessions.as_deref(),
                            &Arc::new(bytes::Bytes::from(env.frame)),
                        ),
                        Err(e) => tracing::warn!(error = %e, "malformed realtime event on the bus"),
                    }
                }
                Ok(BusEvent::Message { channel, payload })
                    if &*channel == SESSION_REVOKED_CHANNEL
                        || &*channel == SESSION_BANNED_CHANNEL
                        || &*channel == SESSION_CHANGED_CHANNEL =>
                {
                    let ids: Vec<SessionId> =
                        payload.split(',').filter_map(|s| s.parse().ok()).collect();
                    for id in &ids {
                        deps.sessions.remove(id);
                    }
                    if &*channel == SESSION_REVOKED_CHANNEL {
                        hub.close_sessions(&ids, CLOSE_SESSION_ENDED);
                    } else if &*channel == SESSION_BANNED_CHANNEL {
                        hub.close_sessions(&ids, CLOSE_BANNED);
                    }
                }
                Ok(BusEvent::Message { channel, payload }) if &*channel == USER_CHANGED_CHANNEL => {
                    if let Ok(id) = payload.parse() {
                        deps.users.remove(&id);
                    }
                }
                Ok(BusEvent::Message { channel, payload })
                    if &*channel == CONVERSATION_CHANGED_CHANNEL =>
                {
                    if let Ok(id) = payload.parse() {
                        deps.conversations.remove(&id);
                    }
                }
                Ok(BusEvent::Message { channel, payload })
                    if &*channel == sc_service::CALL_CHANGED_CHANNEL =>
                {
                    if let Ok(id) = payload.parse() {
                        deps.calls.remove(&id);
                    }
                }
                Ok(BusEvent::Message { .. }) => {}
                // A gap in what we heard: trust nothing cached.
                Ok(BusEvent::Resync) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    deps.sessions.clear();
                    deps.users.clear();
                    deps.conversations.clear();
                    deps.calls.clear();
                    // Revocations may have been among the missed events: ask the database about
                    // every local socket's session (off this loop, so delivery goes on).
                    let (deps, hub) = (deps.clone(), hub.clone());
                    tokio::spawn(async move {
                        let now = sc_core::time::Timestamp::now();
                        let mut ended = Vec::new();
                        for sid in hub.local_sessions() {
                            let alive = matches!(deps.db.sessions().find(sid).await, Ok(Some(s)) if s.is_active(now));
                            if !alive {
                                ended.push(sid);
                            }
                        }
                        hub.close_sessions(&ended, CLOSE_SESSION_ENDED);
                    });
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
