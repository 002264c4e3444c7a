//! The push client from the configuration: the VAPID key (configured, or generated into the
//! data directory), and FCM and APNs when their credentials are configured. Errors name the
//! setting, never a path or a value: where credentials live is not for the logs.

use crate::secrets;
use anyhow::Context;
use sc_core::config::Config;
use sc_infra::push::{ApnsConfig, FcmCredentials, PushClient, PushConfig, VapidKey};
use std::sync::Arc;

/// The VAPID `sub` claim: as configured, else a `mailto:` of the sender address.
fn vapid_subject(cfg: &Config) -> String {
    if !cfg.vapid_subject.is_empty() {
        return cfg.vapid_subject.clone();
    }
    let from = &cfg.mail_from;
    let address = match (from.find('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from.as_str(),
    };
    format!("mailto:{}", address.trim())
}

fn read(setting: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {setting}: {}", e.kind()))
}

pub fn client(cfg: &Config) -> anyhow::Result<PushClient> {
    let vapid = match &cfg.vapid_private_key {
        Some(k) => VapidKey::from_base64url(k.expose())
            .map_err(|_| anyhow::anyhow!("vapid_private_key is not a base64url P-256 key"))?,
        None => {
            let text = secrets::load_or_create_text(&cfg.data_dir, "vapid_private_key", || {
                VapidKey::generate().to_base64url()
            })?;
            VapidKey::from_base64url(&text).map_err(|_| {
                anyhow::anyhow!("vapid_private_key in the data directory is not a P-256 key")
            })?
        }
    };
    let mut push = PushConfig::new(Arc::new(vapid), vapid_subject(cfg));
    push.allow_insecure_endpoints = cfg.push_allow_insecure_endpoints;
    push.fcm_endpoint = cfg.fcm_endpoint.clone();
    if let Some(path) = &cfg.fcm_credentials_file {
        let json = read("fcm_credentials_file", path)?;
        let json = String::from_utf8(json).context("fcm_credentials_file is not UTF-8")?;
        push.fcm =
            Some(FcmCredentials::from_json(&json).map_err(|_| {
                anyhow::anyhow!("fcm_credentials_file is not a service-account JSON")
            })?);
    }
    if let Some(path) = &cfg.apns_key_file {
        let key = read("apns_key_file", path)?;
        push.apns = Some(ApnsConfig {
            key_pem: String::from_utf8(key).context("apns_key_file is not a PEM file")?,
            key_id: cfg.apns_key_id.clone().unwrap_or_default(),
            team_id: cfg.apns_team_id.clone().unwrap_or_default(),
            topic: cfg.apns_topic.clone().unwrap_or_default(),
            endpoint: cfg.apns_endpoint.clone(),
        });
    }
    if let Some(path) = &cfg.push_tls_ca_file {
        push.extra_root_ca_pem = Some(read("push_tls_ca_file", path)?);
    }
    PushClient::new(push).map_err(|e| anyhow::anyhow!("push configuration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_defaults_to_the_sender_address() {
        let mut cfg = Config::default();
        assert_eq!(vapid_subject(&cfg), "mailto:no-reply@localhost");
        cfg.mail_from = "ops@example.org".into();
        assert_eq!(vapid_subject(&cfg), "mailto:ops@example.org");
        cfg.vapid_subject = "https://example.org/contact".into();
        assert_eq!(vapid_subject(&cfg), "https://example.org/contact");
    }
}
