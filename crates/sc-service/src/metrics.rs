//! Prometheus metrics, one registry per application instance (no global recorder, so several
//! instances can live in one process). Labels are route templates and fixed words, never raw
//! paths or user input.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<Labels, Counter>,
    pub http_duration: Family<Labels, Histogram>,
    pub auth_success: Counter,
    pub auth_failures: Family<Labels, Counter>,
    pub auth_lockouts: Counter,
    pub rate_limited: Family<Labels, Counter>,
    pub db_pool_size: Gauge,
    pub db_pool_idle: Gauge,
    pub redis_up: Gauge,
    pub mail_sent: Counter,
    pub mail_failed: Counter,
    pub ws_connections: Gauge,
    pub ws_events_delivered: Gauge,
    pub ws_slow_consumer_closes: Gauge,
    /// Call quality samples posted by participants.
    pub call_rtt_ms: Histogram,
    pub call_jitter_ms: Histogram,
    pub call_packet_loss: Histogram,
    pub call_bitrate_kbps: Histogram,
    /// Pushes by channel (`webpush`, `fcm`, `apns`) and outcome (`delivered`, `gone`,
    /// `retry`, `dead`): no endpoint or token ever becomes a label.
    pub push_outcomes: Family<Labels, Counter>,
    /// Pushes waiting in the queue and dead letters (refreshed by the push worker).
    pub push_queued: Gauge,
    pub push_dead_letters: Gauge,
    /// Notification records dispatched, by kind.
    pub notifications_dispatched: Family<Labels, Counter>,
    /// AI requests by route template and outcome (`ok`, `unavailable`, `rejected`).
    pub ai_requests: Family<Labels, Counter>,
    /// Tokens the provider reported, by `kind` (`prompt`, `completion`).
    pub ai_tokens: Family<Labels, Counter>,
    /// Provider time per AI request, by route template.
    pub ai_latency: Family<Labels, Histogram>,
    /// Rows deleted by the retention jobs, by `kind` (`audit`, ...).
    pub retention_purged: Family<Labels, Counter>,
    /// Accounts banned and unbanned, by `action`.
    pub bans: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("secureconnect");
        let http_requests = Family::<Labels, Counter>::default();
        let http_duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let auth_success = Counter::default();
        let auth_failures = Family::<Labels, Counter>::default();
        let auth_lockouts = Counter::default();
        let rate_limited = Family::<Labels, Counter>::default();
        let retention_purged = Family::<Labels, Counter>::default();
        let bans = Family::<Labels, Counter>::default();
        let db_pool_size = Gauge::default();
        let db_pool_idle = Gauge::default();
        let redis_up = Gauge::default();
        let mail_sent = Counter::default();
        let mail_failed = Counter::default();
        let ws_connections = Gauge::default();
        let ws_events_delivered = Gauge::default();
        let ws_slow_consumer_closes = Gauge::default();
        let call_rtt_ms =
            Histogram::new([10.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1000.0]);
        let call_jitter_ms = Histogram::new([1.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0]);
        let call_packet_loss = Histogram::new([0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]);
        let call_bitrate_kbps = Histogram::new([
            32.0, 64.0, 128.0, 256.0, 512.0, 1000.0, 2000.0, 4000.0, 8000.0,
        ]);
        registry.register(
            "call_rtt_ms",
            "Round-trip times reported by call participants",
            call_rtt_ms.clone(),
        );
        registry.register(
            "call_jitter_ms",
            "Jitter reported by call participants",
            call_jitter_ms.clone(),
        );
        registry.register(
            "call_packet_loss_ratio",
            "Packet loss (0-1) reported by call participants",
            call_packet_loss.clone(),
        );
        registry.register(
            "call_bitrate_kbps",
            "Bitrates reported by call participants",
            call_bitrate_kbps.clone(),
        );
        registry.register(
            "ws_connections",
            "Open WebSockets on this instance",
            ws_connections.clone(),
        );
        registry.register(
            "ws_events_delivered",
            "Events queued to local WebSockets since start",
            ws_events_delivered.clone(),
        );
        registry.register(
            "ws_slow_consumer_closes",
            "WebSockets closed (1013) because the client fell behind, since start",
            ws_slow_consumer_closes.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by matched route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by matched route and method",
            http_duration.clone(),
        );
        registry.register(
            "auth_logins_succeeded",
            "Successful logins",
            auth_success.clone(),
        );
        registry.register(
            "auth_logins_failed",
            "Failed logins by reason",
            auth_failures.clone(),
        );
        registry.register(
            "auth_lockouts",
            "Accounts locked after repeated failures",
            auth_lockouts.clone(),
        );
        registry.register(
            "retention_purged",
            "Rows deleted by the retention jobs, by kind",
            retention_purged.clone(),
        );
        registry.register(
            "admin_bans",
            "Accounts banned and unbanned by administrators, by action",
            bans.clone(),
        );
        registry.register(
            "rate_limit_rejections",
            "Requests refused by a rate limit, by scope",
            rate_limited.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            db_pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            db_pool_idle.clone(),
        );
        registry.register(
            "redis_up",
            "1 when Redis answered the last command, 0 otherwise (or not configured)",
            redis_up.clone(),
        );
        let push_outcomes = Family::<Labels, Counter>::default();
        let push_queued = Gauge::default();
        let push_dead_letters = Gauge::default();
        let notifications_dispatched = Family::<Labels, Counter>::default();
        registry.register(
            "push_outcomes",
            "Push attempts by channel and outcome",
            push_outcomes.clone(),
        );
        registry.register(
            "push_queued",
            "Pushes waiting to be sent",
            push_queued.clone(),
        );
        registry.register(
            "push_dead_letters",
            "Pushes given up after their retries (kept for operators)",
            push_dead_letters.clone(),
        );
        let ai_requests = Family::<Labels, Counter>::default();
        let ai_tokens = Family::<Labels, Counter>::default();
        let ai_latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
        });
        registry.register(
            "ai_requests",
            "AI requests by route and outcome",
            ai_requests.clone(),
        );
        registry.register(
            "ai_tokens",
            "Tokens the AI provider reported, by kind",
            ai_tokens.clone(),
        );
        registry.register(
            "ai_provider_seconds",
            "Time spent waiting for the AI provider, by route",
            ai_latency.clone(),
        );
        registry.register(
            "notifications_dispatched",
            "Notification records dispatched, by kind",
            notifications_dispatched.clone(),
        );
        registry.register(
            "mail_sent",
            "Mails handed to the transport",
            mail_sent.clone(),
        );
        registry.register(
            "mail_failed",
            "Mail delivery attempts that failed",
            mail_failed.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            auth_success,
            auth_failures,
            auth_lockouts,
            rate_limited,
            db_pool_size,
            db_pool_idle,
            redis_up,
            mail_sent,
            mail_failed,
            ws_connections,
            ws_events_delivered,
            ws_slow_consumer_closes,
            call_rtt_ms,
            call_jitter_ms,
            call_packet_loss,
            call_bitrate_kbps,
            push_outcomes,
            push_queued,
            push_dead_letters,
            notifications_dispatched,
            ai_requests,
            ai_tokens,
            ai_latency,
            retention_purged,
            bans,
        }
    }

    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
