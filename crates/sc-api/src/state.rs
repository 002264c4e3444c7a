//! What every handler can reach.

use sc_core::config::{Config, IpNet};
use sc_infra::redis_link::RedisLink;
use sc_service::{AuthService, Deps, UserService};
use std::sync::Arc;

pub struct AppState {
    pub cfg: Arc<Config>,
    pub deps: Arc<Deps>,
    pub auth: AuthService,
    pub users: UserService,
    pub trusted_proxies: Vec<IpNet>,
    pub redis: Option<RedisLink>,
}
