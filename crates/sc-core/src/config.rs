//! Configuration: defaults, then an optional TOML file, then `SC_*` environment variables.
//! Every secret may also come from a file (`SC_<KEY>_FILE` or `<key>_file` in TOML), as Docker and
//! Kubernetes deliver them. `Config::load` validates everything and names the bad key.

use crate::secret::{Secret, redact_url};
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Deserializer, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error("configuration: {0}")]
    Parse(String),
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587). Refuses to send if the upgrade fails.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on localhost or in tests.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A list that may be written as a TOML array or, in an environment variable, as `a,b,c`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct List(pub Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seq(Vec<String>),
            One(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Seq(v) => List(v),
            Raw::One(s) => List(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect(),
            ),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    // --- server ---
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The URL clients use to reach this server; links in mails are built on it.
    pub public_url: String,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub cors_allowed_origins: List,
    /// Peers (IP or CIDR) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: List,
    pub body_limit_bytes: usize,
    pub json_max_depth: usize,
    pub request_timeout_seconds: u64,
    pub shutdown_grace_seconds: u64,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Serve the web app from this directory (a `web/dist` built by `npm run build`, read at
    /// start-up) instead of the bundle compiled into the binary: for working on the app.
    pub web_dir: Option<PathBuf>,

    // --- storage ---
    /// `postgres://…` for PostgreSQL; empty for the embedded SQLite file in `data_dir`.
    pub database_url: Option<Secret>,
    pub database_url_file: Option<PathBuf>,
    /// A PostgreSQL read replica for reads that tolerate lag (search, admin lists and stats);
    /// never for what a client reads back after its own write. Unset: the primary.
    pub database_read_url: Option<Secret>,
    pub database_read_url_file: Option<PathBuf>,
    pub database_max_connections: u32,
    /// Run pending migrations at `serve`. On by default for SQLite; for a cluster, run
    /// `secureconnect migrate` once and set this to false.
    pub auto_migrate: bool,
    pub redis_url: Option<Secret>,
    pub redis_url_file: Option<PathBuf>,
    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    pub redis_key_prefix: String,

    // --- secrets (generated into data_dir when absent) ---
    pub jwt_secret: Option<Secret>,
    pub jwt_secret_file: Option<PathBuf>,
    /// 32 bytes, base64: encrypts TOTP secrets at rest.
    pub data_key: Option<Secret>,
    pub data_key_file: Option<PathBuf>,

    // --- tokens and sessions ---
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_seconds: u64,
    pub refresh_idle_days: u64,
    pub refresh_absolute_days: u64,
    pub max_sessions_per_user: u32,
    pub require_verified_email: bool,

    // --- login protection ---
    pub lockout_threshold: u32,
    pub lockout_window_seconds: u64,
    pub lockout_duration_seconds: u64,
    /// Login attempts per client IP per minute.
    pub login_rate_per_ip_per_minute: u32,
    /// Other public auth routes (register, reset, verify) per client IP per minute.
    pub auth_rate_per_ip_per_minute: u32,
    /// Requests per client IP per minute on every route; 0: no such limit.
    pub api_rate_per_ip_per_minute: u32,
    /// WebSocket connects per client IP per minute; 0: no such limit.
    pub ws_connects_per_ip_per_minute: u32,
    /// Authenticated requests per user per minute.
    pub api_rate_per_user_per_minute: u32,
    /// Verification mail re-sends per user per hour.
    pub email_resend_per_hour: u32,
    /// Password hashes computed at once; more requests wait for a slot.
    pub password_hash_concurrency: usize,

    // --- chat and realtime ---
    /// Longest message `content`, in Unicode scalar values.
    pub message_max_chars: usize,
    /// Messages a user may send per minute.
    pub message_rate_per_user_per_minute: u32,
    /// Key-package claims (`POST /v1/keys/claim`) a user may make per minute.
    pub mls_claims_per_user_per_minute: u32,
    /// Distinct emoji one message may carry.
    pub max_reactions_per_message: u32,
    /// Events queued for one WebSocket before a client that stopped reading is disconnected.
    pub ws_outbound_queue: usize,
    /// Frames a client may send per second on one WebSocket (bursts of twice that allowed).
    pub ws_inbound_per_second: u32,
    /// Seconds between server pings.
    pub ws_heartbeat_seconds: u64,
    /// A socket silent for this long (no frame, no pong) is closed.
    pub ws_idle_timeout_seconds: u64,

    // --- drive ---
    /// Largest file (and file version) an upload may declare.
    pub max_file_size_bytes: u64,
    /// Storage quota of a user whose quota an admin has not set.
    pub default_quota_bytes: u64,
    /// Lifetime of a signed download URL.
    pub download_url_ttl_seconds: u64,
    /// An upload not completed within this long is abandoned: its quota is released and its
    /// object deleted by the cleanup job.
    pub upload_reservation_ttl_seconds: u64,
    /// Media types uploads may declare; empty means the built-in list of API.md §12.
    /// Executables, scripts, HTML and SVG stay refused whatever this lists.
    pub allowed_file_types: List,
    /// Versions kept per file; 0 keeps them all. The oldest beyond it are pruned.
    pub max_versions_per_file: u32,
    /// Password attempts a public link accepts per minute, whoever makes them.
    pub link_password_attempts_per_minute: u32,
    /// Seconds between passes of the drive cleanup job (abandoned uploads, deleted objects);
    /// an upload is abandoned this long after its reservation lapsed.
    pub drive_cleanup_interval_seconds: u64,
    /// Seconds between passes of the job that closes polls at their `closes_at`.
    pub poll_close_interval_seconds: u64,

    // --- object storage (S3) ---
    /// `http(s)://host[:port]` of an S3-compatible store; setting it stores drive blobs there
    /// (presigned URLs) instead of under `data_dir/blobs`. The server's own calls go here.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_bucket: Option<String>,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<Secret>,
    pub s3_secret_access_key_file: Option<PathBuf>,
    /// `endpoint/bucket/key` instead of the virtual-host style `bucket.endpoint/key`.
    pub s3_path_style: bool,
    /// The endpoint clients reach the store under, when it is not `s3_endpoint` (the URLs handed
    /// to clients are signed for it).
    pub s3_public_endpoint: Option<String>,

    // --- calls ---
    /// Active participants a call holds at most, the caller included (a mesh: keep it small).
    pub call_max_participants: u32,
    /// A ringing call nobody joins is `missed` after this long.
    pub call_ring_timeout_seconds: u64,
    /// A participant whose sockets have all been gone this long is removed from the call.
    pub call_grace_seconds: u64,
    /// Seconds between passes of the call sweeper (ring timeouts, gone participants).
    pub call_sweep_interval_seconds: u64,
    /// Ended calls older than this many days are deleted; 0 keeps them.
    pub call_retention_days: u32,
    /// STUN URLs handed to clients (`stun:host:port`).
    pub stun_urls: List,
    /// TURN URLs handed to clients with time-limited credentials (needs `turn_secret`).
    pub turn_urls: List,
    /// The shared secret of coturn's `use-auth-secret` (`static-auth-secret`).
    pub turn_secret: Option<Secret>,
    pub turn_secret_file: Option<PathBuf>,
    /// How long TURN credentials stay valid.
    pub turn_credential_ttl_seconds: u64,
    /// Total uplink a client should spend on video in a mesh call, split over the other
    /// participants (kbit/s).
    pub call_uplink_budget_kbps: u32,

    // --- mail ---
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    pub smtp_password_file: Option<PathBuf>,
    pub mail_from: String,
    pub mail_workers: usize,
    pub mail_max_attempts: u32,

    // --- notifications, push and digests ---
    /// Web Push endpoints may be `http://` and private addresses (tests and closed networks
    /// only: endpoints are URLs users choose).
    pub push_allow_insecure_endpoints: bool,
    /// Pushes about plain conversations carry a title and the message text; off by default
    /// (pushes are content-free wake-ups), never for encrypted conversations.
    pub push_include_content: bool,
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for push services. Empty: a
    /// `mailto:` of `mail_from`.
    pub vapid_subject: String,
    /// The VAPID private key (P-256 scalar, base64url); generated into `data_dir` when absent.
    pub vapid_private_key: Option<Secret>,
    pub vapid_private_key_file: Option<PathBuf>,
    /// A Firebase service-account JSON; FCM pushes are off without it.
    pub fcm_credentials_file: Option<PathBuf>,
    pub fcm_endpoint: String,
    /// The APNs token-signing key (`.p8`) with its key id, team id and the app's bundle id.
    pub apns_key_file: Option<PathBuf>,
    pub apns_key_id: Option<String>,
    pub apns_team_id: Option<String>,
    pub apns_topic: Option<String>,
    /// Overrides Apple's production and sandbox endpoints (a gateway, or tests).
    pub apns_endpoint: Option<String>,
    /// A PEM certificate trusted for push services besides the public roots (a private
    /// gateway, or tests).
    pub push_tls_ca_file: Option<PathBuf>,
    /// Pushes sent at once by each instance.
    pub push_concurrency: usize,
    /// Attempts before a push is kept as a dead letter.
    pub push_max_attempts: u32,
    /// Pushes of one conversation to one device are at least this far apart; newer ones
    /// replace the waiting one.
    pub push_collapse_seconds: u64,
    /// Unread message and mention notifications older than this are mailed in a digest to
    /// members who have not been online since.
    pub email_digest_delay_seconds: u64,
    /// Seconds between passes of the digest job.
    pub email_digest_interval_seconds: u64,
    /// Digests quote message text from plain conversations; off by default.
    pub email_include_content: bool,

    // --- AI helpers ---
    /// An OpenAI-compatible `/v1` base (Ollama, vLLM, llama.cpp, LocalAI or a hosted one);
    /// AI needs a provider except summaries, which have an offline fallback.
    pub ai_base_url: Option<String>,
    pub ai_api_key: Option<Secret>,
    pub ai_api_key_file: Option<PathBuf>,
    /// The chat model (assistant chat, summaries, @assistant); chat is off without it.
    pub ai_model: Option<String>,
    /// The image model; images are off without it.
    pub ai_image_model: Option<String>,
    /// A provider request taking longer is abandoned (503); for a stream, until its first
    /// token and between tokens.
    pub ai_timeout_seconds: u64,
    /// AI requests a user may make per day (UTC): chat, images, summaries, assistant replies.
    pub ai_requests_per_user_per_day: u32,
    /// `@assistant` replies per conversation per minute.
    pub ai_assistant_replies_per_conversation_per_minute: u32,
    /// Recent messages an `@assistant` reply is based on.
    pub ai_context_messages: u32,
    /// Tokens of conversation text per summary request to the provider (a map-reduce beyond).
    pub ai_summary_chunk_tokens: u32,

    // --- observability ---
    /// OTLP/HTTP collector base URL (`http://127.0.0.1:4318`); traces go to `<it>/v1/traces`.
    /// Unset: no trace export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported traces.
    pub otlp_service_name: String,

    // --- administration ---
    /// Admin routes need an administrator with 2FA enabled.
    pub admin_require_2fa: bool,
    /// Audit-log entries older than this many days are purged; 0 keeps them.
    pub audit_retention_days: u32,
    /// Messages older than this many days are deleted, with the files attached only to them;
    /// 0 keeps them. Conversations' owners may choose a shorter period.
    pub message_retention_days: u32,
    /// Notification records older than this many days are purged; 0 keeps them.
    pub notification_retention_days: u32,
    /// Seconds between passes of the retention job.
    pub retention_interval_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            public_url: String::new(),
            tls_cert_file: None,
            tls_key_file: None,
            cors_allowed_origins: List::default(),
            trusted_proxies: List::default(),
            body_limit_bytes: 1024 * 1024,
            json_max_depth: 64,
            request_timeout_seconds: 30,
            shutdown_grace_seconds: 30,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            web_dir: None,
            database_url: None,
            database_url_file: None,
            database_read_url: None,
            database_read_url_file: None,
            database_max_connections: 16,
            auto_migrate: true,
            redis_url: None,
            redis_url_file: None,
            redis_key_prefix: "sc:".into(),
            jwt_secret: None,
            jwt_secret_file: None,
            data_key: None,
            data_key_file: None,
            jwt_issuer: "secureconnect".into(),
            jwt_audience: "secureconnect-api".into(),
            access_token_ttl_seconds: 15 * 60,
            refresh_idle_days: 14,
            refresh_absolute_days: 30,
            max_sessions_per_user: 5,
            require_verified_email: false,
            lockout_threshold: 5,
            lockout_window_seconds: 15 * 60,
            lockout_duration_seconds: 15 * 60,
            login_rate_per_ip_per_minute: 30,
            auth_rate_per_ip_per_minute: 20,
            api_rate_per_ip_per_minute: 6000,
            ws_connects_per_ip_per_minute: 60,
            api_rate_per_user_per_minute: 1200,
            email_resend_per_hour: 5,
            password_hash_concurrency: 4,
            message_max_chars: 10_000,
            message_rate_per_user_per_minute: 300,
            mls_claims_per_user_per_minute: 120,
            max_reactions_per_message: 20,
            ws_outbound_queue: 256,
            ws_inbound_per_second: 20,
            ws_heartbeat_seconds: 25,
            ws_idle_timeout_seconds: 75,
            max_file_size_bytes: 100 * 1024 * 1024,
            default_quota_bytes: 10 * 1024 * 1024 * 1024,
            download_url_ttl_seconds: 300,
            upload_reservation_ttl_seconds: 15 * 60,
            allowed_file_types: List::default(),
            max_versions_per_file: 0,
            link_password_attempts_per_minute: 10,
            drive_cleanup_interval_seconds: 60,
            poll_close_interval_seconds: 5,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_bucket: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_secret_access_key_file: None,
            s3_path_style: false,
            s3_public_endpoint: None,
            call_max_participants: 8,
            call_ring_timeout_seconds: 60,
            call_grace_seconds: 30,
            call_sweep_interval_seconds: 5,
            call_retention_days: 365,
            stun_urls: List::default(),
            turn_urls: List::default(),
            turn_secret: None,
            turn_secret_file: None,
            turn_credential_ttl_seconds: 3600,
            call_uplink_budget_kbps: 2500,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password: None,
            smtp_password_file: None,
            mail_from: "SecureConnect <no-reply@localhost>".into(),
            mail_workers: 2,
            mail_max_attempts: 8,
            push_allow_insecure_endpoints: false,
            push_include_content: false,
            vapid_subject: String::new(),
            vapid_private_key: None,
            vapid_private_key_file: None,
            fcm_credentials_file: None,
            fcm_endpoint: "https://fcm.googleapis.com".into(),
            apns_key_file: None,
            apns_key_id: None,
            apns_team_id: None,
            apns_topic: None,
            apns_endpoint: None,
            push_tls_ca_file: None,
            push_concurrency: 64,
            push_max_attempts: 8,
            push_collapse_seconds: 2,
            email_digest_delay_seconds: 15 * 60,
            email_digest_interval_seconds: 60,
            email_include_content: false,
            ai_base_url: None,
            ai_api_key: None,
            ai_api_key_file: None,
            ai_model: None,
            ai_image_model: None,
            ai_timeout_seconds: 60,
            ai_requests_per_user_per_day: 200,
            ai_assistant_replies_per_conversation_per_minute: 6,
            ai_context_messages: 20,
            ai_summary_chunk_tokens: 3000,
            otlp_endpoint: None,
            otlp_service_name: "secureconnect".into(),
            admin_require_2fa: true,
            audit_retention_days: 365,
            message_retention_days: 0,
            notification_retention_days: 90,
            retention_interval_seconds: 3600,
        }
    }
}

/// A parsed trusted-proxy entry: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        // `contains` compares IPv4 peers, however written, as IPv4: an IPv4-mapped net
        // (`::ffff:10.0.0.0/104`) is the IPv4 net it names, or it would never match.
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
            && prefix >= 96
        {
            return Some(Self {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

pub enum DatabaseKind {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Config {
    /// Defaults → TOML file (if given) → `SC_*` environment → `*_file` secrets → validation.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed("SC_"))
    }

    /// As `load`, with the environment provider given (tests pass a controlled one).
    pub fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            fig = fig.merge(Toml::file(path));
        }
        // Test-harness variables share the prefix but are not configuration.
        fig = fig.merge(env.filter(|k| !k.as_str().starts_with("test_")));
        let mut cfg: Config = fig.extract().map_err(|e| {
            let key = e.path.join(".");
            if key.is_empty() {
                ConfigError::Parse(e.to_string())
            } else {
                invalid(&key, e.kind.to_string())
            }
        })?;
        cfg.read_secret_files()?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        fn read(
            key: &str,
            path: &Option<PathBuf>,
            target: &mut Option<Secret>,
        ) -> Result<(), ConfigError> {
            if let Some(p) = path {
                let v = std::fs::read_to_string(p)
                    .map_err(|e| invalid(&format!("{key}_file"), format!("cannot read: {e}")))?;
                *target = Some(Secret::new(v.trim_end_matches(['\r', '\n']).to_string()));
            }
            Ok(())
        }
        read(
            "database_url",
            &self.database_url_file,
            &mut self.database_url,
        )?;
        read(
            "database_read_url",
            &self.database_read_url_file,
            &mut self.database_read_url,
        )?;
        read("redis_url", &self.redis_url_file, &mut self.redis_url)?;
        read("jwt_secret", &self.jwt_secret_file, &mut self.jwt_secret)?;
        read("data_key", &self.data_key_file, &mut self.data_key)?;
        read(
            "smtp_password",
            &self.smtp_password_file,
            &mut self.smtp_password,
        )?;
        read(
            "s3_secret_access_key",
            &self.s3_secret_access_key_file,
            &mut self.s3_secret_access_key,
        )?;
        read("turn_secret", &self.turn_secret_file, &mut self.turn_secret)?;
        read(
            "vapid_private_key",
            &self.vapid_private_key_file,
            &mut self.vapid_private_key,
        )?;
        read("ai_api_key", &self.ai_api_key_file, &mut self.ai_api_key)?;
        // An empty value means "not set" (handy to switch a backend off from the environment).
        for s in [
            &mut self.database_url,
            &mut self.redis_url,
            &mut self.jwt_secret,
            &mut self.data_key,
            &mut self.s3_secret_access_key,
            &mut self.turn_secret,
            &mut self.vapid_private_key,
            &mut self.ai_api_key,
        ] {
            if s.as_ref().is_some_and(|v| v.is_empty()) {
                *s = None;
            }
        }
        for s in [
            &mut self.s3_endpoint,
            &mut self.s3_bucket,
            &mut self.s3_access_key_id,
            &mut self.s3_public_endpoint,
        ] {
            if s.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *s = None;
            }
        }
        Ok(())
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.public_url.is_empty() {
            let scheme = if self.tls_cert_file.is_some() {
                "https"
            } else {
                "http"
            };
            self.public_url = format!("{scheme}://{}", self.listen);
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(invalid("public_url", "must start with http:// or https://"));
        }
        self.public_url = self.public_url.trim_end_matches('/').to_string();
        if let Some(url) = &self.database_url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(invalid(
                    "database_url",
                    "must be a postgres:// URL (leave empty for SQLite)",
                ));
            }
        }
        if let Some(url) = &self.redis_url {
            let u = url.expose();
            if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
                return Err(invalid("redis_url", "must be a redis:// or rediss:// URL"));
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(invalid(
                "tls_cert_file",
                "tls_cert_file and tls_key_file must be set together",
            ));
        }
        for p in &self.trusted_proxies.0 {
            if IpNet::parse(p).is_none() {
                return Err(invalid(
                    "trusted_proxies",
                    format!("`{p}` is not an IP address or CIDR"),
                ));
            }
        }
        for o in &self.cors_allowed_origins.0 {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(invalid(
                    "cors_allowed_origins",
                    format!("`{o}` is not an origin"),
                ));
            }
        }
        if let Some(read) = &self.database_read_url {
            if self.database_url.is_none() {
                return Err(invalid(
                    "database_read_url",
                    "a read replica needs database_url (PostgreSQL)",
                ));
            }
            let u = read.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(invalid("database_read_url", "must be a postgres:// URL"));
            }
        }
        if let Some(e) = &self.otlp_endpoint {
            check_endpoint(e).map_err(|r| invalid("otlp_endpoint", r))?;
        }
        let positive: [(&str, u64); 37] = [
            ("call_max_participants", self.call_max_participants as u64),
            (
                "retention_interval_seconds",
                self.retention_interval_seconds,
            ),
            ("call_ring_timeout_seconds", self.call_ring_timeout_seconds),
            ("call_grace_seconds", self.call_grace_seconds),
            (
                "call_sweep_interval_seconds",
                self.call_sweep_interval_seconds,
            ),
            (
                "turn_credential_ttl_seconds",
                self.turn_credential_ttl_seconds,
            ),
            (
                "poll_close_interval_seconds",
                self.poll_close_interval_seconds,
            ),
            (
                "link_password_attempts_per_minute",
                self.link_password_attempts_per_minute as u64,
            ),
            (
                "max_reactions_per_message",
                self.max_reactions_per_message as u64,
            ),
            ("message_max_chars", self.message_max_chars as u64),
            (
                "message_rate_per_user_per_minute",
                self.message_rate_per_user_per_minute as u64,
            ),
            (
                "mls_claims_per_user_per_minute",
                self.mls_claims_per_user_per_minute as u64,
            ),
            ("ws_outbound_queue", self.ws_outbound_queue as u64),
            ("ws_inbound_per_second", self.ws_inbound_per_second as u64),
            ("ws_heartbeat_seconds", self.ws_heartbeat_seconds),
            ("ws_idle_timeout_seconds", self.ws_idle_timeout_seconds),
            ("body_limit_bytes", self.body_limit_bytes as u64),
            ("json_max_depth", self.json_max_depth as u64),
            ("request_timeout_seconds", self.request_timeout_seconds),
            (
                "database_max_connections",
                self.database_max_connections as u64,
            ),
            ("access_token_ttl_seconds", self.access_token_ttl_seconds),
            ("refresh_idle_days", self.refresh_idle_days),
            ("refresh_absolute_days", self.refresh_absolute_days),
            ("max_sessions_per_user", self.max_sessions_per_user as u64),
            ("lockout_threshold", self.lockout_threshold as u64),
            (
                "login_rate_per_ip_per_minute",
                self.login_rate_per_ip_per_minute as u64,
            ),
            (
                "auth_rate_per_ip_per_minute",
                self.auth_rate_per_ip_per_minute as u64,
            ),
            (
                "api_rate_per_user_per_minute",
                self.api_rate_per_user_per_minute as u64,
            ),
            (
                "password_hash_concurrency",
                self.password_hash_concurrency as u64,
            ),
            ("mail_workers", self.mail_workers as u64),
            ("push_concurrency", self.push_concurrency as u64),
            ("push_max_attempts", self.push_max_attempts as u64),
            (
                "email_digest_interval_seconds",
                self.email_digest_interval_seconds,
            ),
            ("ai_timeout_seconds", self.ai_timeout_seconds),
            (
                "ai_requests_per_user_per_day",
                self.ai_requests_per_user_per_day as u64,
            ),
            ("ai_context_messages", self.ai_context_messages as u64),
            (
                "ai_summary_chunk_tokens",
                self.ai_summary_chunk_tokens as u64,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(invalid(key, "must be greater than zero"));
            }
        }
        if self.ws_idle_timeout_seconds <= self.ws_heartbeat_seconds {
            return Err(invalid(
                "ws_idle_timeout_seconds",
                "must be longer than ws_heartbeat_seconds",
            ));
        }
        if self.refresh_idle_days > self.refresh_absolute_days {
            return Err(invalid(
                "refresh_idle_days",
                "must not exceed refresh_absolute_days",
            ));
        }
        if let Some(k) = &self.data_key {
            crate::secret_bytes(k.expose())
                .filter(|b| b.len() == 32)
                .ok_or_else(|| invalid("data_key", "must be 32 bytes, base64-encoded"))?;
        }
        if let Some(k) = &self.jwt_secret
            && k.expose().len() < 32
        {
            return Err(invalid("jwt_secret", "must be at least 32 characters"));
        }
        if self.smtp_host.as_deref().is_some_and(str::is_empty) {
            self.smtp_host = None;
        }
        if !self.mail_from.contains('@') {
            return Err(invalid(
                "mail_from",
                "must be a mail address, e.g. `Name <no-reply@example.org>`",
            ));
        }
        self.validate_s3()?;
        self.validate_push()?;
        self.validate_ai()
    }

    fn validate_ai(&mut self) -> Result<(), ConfigError> {
        for v in [
            &mut self.ai_base_url,
            &mut self.ai_model,
            &mut self.ai_image_model,
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *v = None;
            }
        }
        if self.ai_summary_chunk_tokens < 256 {
            return Err(invalid(
                "ai_summary_chunk_tokens",
                "must be at least 256 (a chunk holds whole lines of the transcript)",
            ));
        }
        if let Some(url) = &mut self.ai_base_url {
            check_endpoint(url).map_err(|reason| invalid("ai_base_url", reason))?;
            *url = url.trim_end_matches('/').to_string();
        }
        Ok(())
    }

    fn validate_push(&mut self) -> Result<(), ConfigError> {
        check_endpoint(&self.fcm_endpoint).map_err(|reason| invalid("fcm_endpoint", reason))?;
        self.fcm_endpoint = self.fcm_endpoint.trim_end_matches('/').to_string();
        if let Some(url) = &mut self.apns_endpoint {
            check_endpoint(url).map_err(|reason| invalid("apns_endpoint", reason))?;
            *url = url.trim_end_matches('/').to_string();
        }
        if self.apns_key_file.is_some() {
            for (key, v) in [
                ("apns_key_id", &self.apns_key_id),
                ("apns_team_id", &self.apns_team_id),
                ("apns_topic", &self.apns_topic),
            ] {
                if v.as_deref().is_none_or(str::is_empty) {
                    return Err(invalid(key, "is required with apns_key_file"));
                }
            }
        }
        let subject = &self.vapid_subject;
        if !subject.is_empty()
            && !subject.starts_with("mailto:")
            && !subject.starts_with("https://")
        {
            return Err(invalid(
                "vapid_subject",
                "must be a mailto: or https: URL (RFC 8292)",
            ));
        }
        Ok(())
    }

    fn validate_s3(&mut self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("s3_endpoint", &mut self.s3_endpoint),
            ("s3_public_endpoint", &mut self.s3_public_endpoint),
        ] {
            if let Some(url) = v {
                check_endpoint(url).map_err(|reason| invalid(key, reason))?;
                *url = url.trim_end_matches('/').to_string();
            }
        }
        let region_ok = !self.s3_region.is_empty()
            && self.s3_region.len() <= 64
            && self
                .s3_region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(invalid(
                "s3_region",
                "must be a region name such as `us-east-1` (lowercase letters, digits, `-`)",
            ));
        }
        if self.s3_endpoint.is_none() {
            if self.s3_public_endpoint.is_some() {
                return Err(invalid(
                    "s3_public_endpoint",
                    "needs s3_endpoint (the endpoint the server itself calls)",
                ));
            }
            return Ok(());
        }
        let Some(bucket) = &self.s3_bucket else {
            return Err(invalid("s3_bucket", "is required when s3_endpoint is set"));
        };
        if !valid_bucket_name(bucket) {
            return Err(invalid(
                "s3_bucket",
                "must be 3 to 63 lowercase letters, digits, `.` or `-`, starting and ending with a letter or digit",
            ));
        }
        if self.s3_access_key_id.is_none() {
            return Err(invalid(
                "s3_access_key_id",
                "is required when s3_endpoint is set",
            ));
        }
        if self
            .s3_access_key_id
            .as_deref()
            .is_some_and(|k| !k.bytes().all(|b| b.is_ascii_graphic() && b != b'/'))
        {
            return Err(invalid(
                "s3_access_key_id",
                "must be printable ASCII without spaces or `/`",
            ));
        }
        if self.s3_secret_access_key.is_none() {
            return Err(invalid(
                "s3_secret_access_key",
                "is required when s3_endpoint is set (or s3_secret_access_key_file)",
            ));
        }
        Ok(())
    }

    pub fn database(&self) -> DatabaseKind {
        match &self.database_url {
            Some(url) => DatabaseKind::Postgres(url.expose().to_string()),
            None => DatabaseKind::Sqlite(self.data_dir.join("secureconnect.db")),
        }
    }

    /// A provider and a chat model are configured (assistant chat, provider summaries,
    /// @assistant replies).
    pub fn ai_chat_configured(&self) -> bool {
        self.ai_base_url.is_some() && self.ai_model.is_some()
    }

    pub fn trusted_proxy_nets(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .0
            .iter()
            .filter_map(|p| IpNet::parse(p))
            .collect()
    }

    /// The configuration as TOML with every secret redacted (`config print`).
    pub fn to_redacted_toml(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        // URLs are shown without their password; other secrets serialize as [REDACTED].
        if let Some(url) = &self.database_url {
            v["database_url"] = redact_url(url.expose()).into();
        }
        if let Some(url) = &self.redis_url {
            v["redis_url"] = redact_url(url.expose()).into();
        }
        if let Some(url) = &self.database_read_url {
            v["database_read_url"] = redact_url(url.expose()).into();
        }
        let v = strip_nulls(v);
        toml_lines(&v)
    }
}

/// An S3 endpoint: `http(s)://host[:port][/path]`, without credentials, query or fragment.
fn check_endpoint(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err("has no host".into());
    }
    if authority.contains('@') {
        return Err(
            "must not hold credentials (use s3_access_key_id and s3_secret_access_key)".into(),
        );
    }
    if rest.contains(['?', '#'])
        || rest
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("must be a plain URL without query, fragment or spaces".into());
    }
    Ok(())
}

/// S3 bucket naming rules (the DNS-compatible subset every S3 implementation accepts).
fn valid_bucket_name(b: &str) -> bool {
    let edge = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && edge(b.bytes().next())
        && edge(b.bytes().last())
        && !b.contains("..")
}

fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            serde_json::Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

fn toml_lines(v: &serde_json::Value) -> String {
    let mut out = String::new();
    if let serde_json::Value::Object(m) = v {
        for (k, v) in m {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment provider that sees nothing, so unit tests ignore the process environment.
    fn env() -> Env {
        Env::prefixed("SC_UNIT_TEST_NOTHING_")
    }

    #[test]
    fn defaults_are_valid_and_local() {
        let cfg = Config::load_from(None, env()).unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.public_url, "http://127.0.0.1:8080");
        assert!(matches!(cfg.database(), DatabaseKind::Sqlite(_)));
    }

    #[test]
    fn toml_file_and_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("sc-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            "listen = \"0.0.0.0:9000\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let cfg = Config::load_from(Some(&f), env()).unwrap();
        assert_eq!(cfg.listen.port(), 9000);
        assert!(cfg.trusted_proxy_nets()[0].contains("10.1.2.3".parse().unwrap()));

        std::fs::write(&f, "listen = \"nope\"\n").unwrap();
        let err = Config::load_from(Some(&f), env()).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");

        std::fs::write(&f, "database_url = \"mysql://x\"\n").unwrap();
        let err = Config::load_from(Some(&f), env()).unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");
        assert!(
            !err.contains("mysql://x"),
            "the bad value may hold a password: {err}"
        );

        let secret = dir.join("jwt");
        std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::write(
            &f,
            format!("jwt_secret_file = {:?}\n", secret.display().to_string()),
        )
        .unwrap();
        let cfg = Config::load_from(Some(&f), env()).unwrap();
        assert_eq!(
            cfg.jwt_secret.unwrap().expose(),
            "0123456789abcdef0123456789abcdef"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redacted_print_hides_secrets() {
        let cfg = Config {
            database_url: Some(Secret::new("postgres://u:topsecretpw@h/db")),
            jwt_secret: Some(Secret::new("jwtjwtjwtjwtjwtjwtjwtjwtjwtjwtjwtjwt")),
            ..Config::default()
        };
        let out = cfg.to_redacted_toml();
        assert!(!out.contains("topsecretpw"));
        assert!(!out.contains("jwtjwtjwt"));
        assert!(out.contains("database_url"));
    }

    #[test]
    fn s3_keys_are_validated_and_the_secret_redacted() {
        let dir = std::env::temp_dir().join(format!("sc-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        let key_file = dir.join("s3key");
        std::fs::write(&key_file, "s3-topsecret-key\n").unwrap();
        let base = format!(
            "s3_endpoint = \"http://127.0.0.1:9000/\"\ns3_bucket = \"drive\"\n\
             s3_access_key_id = \"AKID\"\ns3_secret_access_key_file = {:?}\n",
            key_file.display().to_string()
        );
        std::fs::write(&f, &base).unwrap();
        let cfg = Config::load_from(Some(&f), env()).unwrap();
        assert_eq!(cfg.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(cfg.s3_region, "us-east-1");
        assert!(!cfg.s3_path_style);
        assert_eq!(
            cfg.s3_secret_access_key.as_ref().unwrap().expose(),
            "s3-topsecret-key"
        );
        let out = cfg.to_redacted_toml();
        assert!(out.contains("s3_secret_access_key"), "{out}");
        assert!(!out.contains("s3-topsecret-key"), "{out}");
        assert!(!format!("{cfg:?}").contains("s3-topsecret-key"));

        for (extra, key) in [
            ("s3_bucket = \"Bad_Bucket\"\n", "s3_bucket"),
            ("s3_region = \"\"\n", "s3_region"),
            ("s3_public_endpoint = \"ftp://x\"\n", "s3_public_endpoint"),
        ] {
            std::fs::write(&f, format!("{base}{extra}")).unwrap();
            let err = Config::load_from(Some(&f), env()).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        for (body, key) in [
            ("s3_endpoint = \"s3.example.org\"\n", "s3_endpoint"),
            (
                "s3_endpoint = \"https://u:pw@s3.example.org\"\n",
                "s3_endpoint",
            ),
            ("s3_endpoint = \"https://s3.example.org\"\n", "s3_bucket"),
            (
                "s3_endpoint = \"https://s3.example.org\"\ns3_bucket = \"b-1\"\n",
                "s3_access_key_id",
            ),
            (
                "s3_endpoint = \"https://s3.example.org\"\ns3_bucket = \"b-1\"\ns3_access_key_id = \"k\"\n",
                "s3_secret_access_key",
            ),
            (
                "s3_public_endpoint = \"https://s3.example.org\"\n",
                "s3_public_endpoint",
            ),
        ] {
            std::fs::write(&f, body).unwrap();
            let err = Config::load_from(Some(&f), env()).unwrap_err().to_string();
            assert!(err.contains(key), "{body}: {err}");
            assert!(!err.contains("pw@"), "{err}");
        }
        // An empty endpoint switches S3 off.
        std::fs::write(&f, "s3_endpoint = \"\"\n").unwrap();
        assert!(
            Config::load_from(Some(&f), env())
                .unwrap()
                .s3_endpoint
                .is_none()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ipnet_matching() {
        let n = IpNet::parse("192.168.0.0/16").unwrap();
        assert!(n.contains("192.168.4.5".parse().unwrap()));
        assert!(!n.contains("10.0.0.1".parse().unwrap()));
        assert!(
            IpNet::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(IpNet::parse("10.0.0.0/33").is_none());
    }
}
