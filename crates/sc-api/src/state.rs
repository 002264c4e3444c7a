//! What every handler can reach.

use sc_core::config::{Config, IpNet};
use sc_infra::{blobs::BlobStore, redis_link::RedisLink};
use sc_service::{
    AuthService, Deps, UserService,
    calls::CallService,
    chat::ChatService,
    drive::DriveService,
    notify::NotifyService,
    realtime::{Hub, RealtimeService},
};
use std::sync::Arc;

pub struct AppState {
    pub cfg: Arc<Config>,
    pub deps: Arc<Deps>,
    pub auth: AuthService,
    pub users: UserService,
    pub chat: ChatService,
    pub realtime: RealtimeService,
    pub notify: NotifyService,
    pub hub: Arc<Hub>,
    pub trusted_proxies: Vec<IpNet>,
    pub redis: Option<RedisLink>,
    /// Where drive files live; the local adapter's signed URLs are served by `routes::blobs`.
    pub blobs: Arc<BlobStore>,
    pub drive: DriveService,
    pub calls: CallService,
    pub ai: sc_service::ai::AiService,
    pub admin: sc_service::admin::AdminService,
    pub mls: sc_service::mls::MlsService,
    /// The web app's Content-Security-Policy, derived from `public_url` once at start-up.
    pub web_csp: axum::http::HeaderValue,
    /// The web app's files: the embedded bundle, or `web_dir` read at start-up.
    pub web: crate::routes::web::WebBundle,
    /// Set when the instance begins to stop: `/ready` answers 503 so load balancers move on.
    pub draining: std::sync::atomic::AtomicBool,
}
