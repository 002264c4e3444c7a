//! ICE servers for clients: STUN URLs as configured, TURN URLs with time-limited REST
//! credentials in coturn's `use-auth-secret` scheme (username `<expiry>:<user_id>`, credential
//! base64(HMAC-SHA1(secret, username))).

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sc_core::{config::Config, ids::UserId, time::Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

/// One entry in the shape of WebRTC's RTCIceServer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IceServers {
    pub ice_servers: Vec<IceServer>,
    /// How long the TURN credentials stay valid.
    pub ttl_seconds: u64,
}

/// The coturn REST credential for `username`.
pub fn turn_credential(secret: &[u8], username: &str) -> String {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The ICE servers `user` may use from `now`.
pub fn ice_servers(cfg: &Config, user: UserId, now: Timestamp) -> IceServers {
    let ttl = cfg.turn_credential_ttl_seconds;
    let mut servers = Vec::new();
    if !cfg.stun_urls.0.is_empty() {
        servers.push(IceServer {
            urls: cfg.stun_urls.0.clone(),
            username: None,
            credential: None,
        });
    }
    if let Some(secret) = &cfg.turn_secret
        && !cfg.turn_urls.0.is_empty()
    {
        let expiry = now.unix_seconds() + ttl as i64;
        let username = format!("{expiry}:{user}");
        servers.push(IceServer {
            urls: cfg.turn_urls.0.clone(),
            credential: Some(turn_credential(secret.expose().as_bytes(), &username)),
            username: Some(username),
        });
    }
    IceServers {
        ice_servers: servers,
        ttl_seconds: ttl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_coturn_scheme() {
        // Computed apart from this code, as coturn does:
        // echo -n "1433895918506:my_username" | openssl dgst -binary -sha1 -hmac secret | base64
        assert_eq!(
            turn_credential(b"secret", "1433895918506:my_username"),
            "ExImk7KshjzP8GSyPQsHUhUcJbk="
        );
    }
}
