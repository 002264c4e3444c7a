//! One Redis connection manager per instance. It connects lazily and reconnects by itself; every
//! command has a short timeout, and the link remembers whether Redis answered last time so
//! `/ready` and the fallbacks can tell.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};
use std::time::{Duration, Instant};
use tracing::Instrument as _;

#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    manager: ConnectionManager,
    healthy: Arc<AtomicBool>,
    /// When Redis last failed (ms since `epoch`); while it is down, requests try it at most
    /// once per `RETRY_EVERY` instead of each paying a timeout.
    last_failure_ms: Arc<AtomicU64>,
    epoch: Instant,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("RedisLink")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
const RETRY_EVERY: Duration = Duration::from_millis(500);

impl RedisLink {
    pub fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|_| "invalid Redis URL".to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot create Redis connection manager: {e}"))?;
        Ok(Self {
            client,
            manager,
            healthy: Arc::new(AtomicBool::new(true)),
            last_failure_ms: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            prefix: prefix.into(),
        })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, ok: bool) {
        if !ok {
            self.last_failure_ms
                .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        let was = self.healthy.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!("redis reachable");
            } else {
                tracing::warn!("redis unreachable; falling back to per-instance behaviour");
            }
        }
    }

    /// False while Redis is known down and was tried less than `RETRY_EVERY` ago: callers
    /// take their fallback at once.
    fn worth_trying(&self) -> bool {
        self.is_healthy()
            || self.epoch.elapsed().as_millis() as u64
                >= self.last_failure_ms.load(Ordering::Relaxed) + RETRY_EVERY.as_millis() as u64
    }

    /// Runs a command with a timeout; records health from the outcome.
    pub async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        if !self.worth_trying() {
            return None;
        }
        self.run_now(cmd).await
    }

    /// Runs a command now, whatever the circuit breaker says.
    pub async fn run_now<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let mut conn = self.manager.clone();
        let res = tokio::time::timeout(COMMAND_TIMEOUT * 2, cmd.query_async::<T>(&mut conn))
            .instrument(sc_core::dependency_span!("redis", "redis.command"))
            .await;
        match res {
            Ok(Ok(v)) => {
                self.set_healthy(true);
                Some(v)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e.kind_str(), "redis command failed");
                self.set_healthy(false);
                None
            }
            Err(_) => {
                self.set_healthy(false);
                None
            }
        }
    }

    /// Runs a pipeline (a `MULTI` transaction when built `atomic()`) with a timeout; records
    /// health from the outcome.
    pub async fn run_pipe<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        if !self.worth_trying() {
            return None;
        }
        let mut conn = self.manager.clone();
        let res = tokio::time::timeout(COMMAND_TIMEOUT * 2, pipe.query_async::<T>(&mut conn))
            .instrument(sc_core::dependency_span!("redis", "redis.pipeline"))
            .await;
        match res {
            Ok(Ok(v)) => {
                self.set_healthy(true);
                Some(v)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e.kind_str(), "redis pipeline failed");
                self.set_healthy(false);
                None
            }
            Err(_) => {
                self.set_healthy(false);
                None
            }
        }
    }

    /// A real probe, whatever the recent failures (readiness checks).
    pub async fn ping(&self) -> bool {
        self.run_now::<String>(&redis::cmd("PING")).await.is_some()
    }
}

trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for redis::RedisError {
    // The error's Display can include the URL; log only its category.
    fn kind_str(&self) -> String {
        format!("{:?}", self.kind())
    }
}
