//! Fixed-window rate limits. With Redis the count is shared by every instance (one atomic
//! script per check); while Redis is unreachable each instance counts on its own, so limits
//! degrade to per-instance rather than failing open or closed.

use crate::redis_link::RedisLink;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_seconds: u64,
}

pub struct RateLimiter {
    local: Mutex<LocalWindows>,
    redis: Option<RedisLink>,
    script: redis::Script,
}

struct LocalWindows {
    windows: HashMap<String, (Instant, u32)>,
    last_sweep: Instant,
}

const INCR_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
";

impl RateLimiter {
    pub fn new(redis: Option<RedisLink>) -> Self {
        Self {
            local: Mutex::new(LocalWindows {
                windows: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            redis,
            script: redis::Script::new(INCR_SCRIPT),
        }
    }

    /// Counts one hit on `key` and says whether it is within `limit` per `window`.
    pub async fn check(&self, key: &str, limit: u32, window: Duration) -> Decision {
        if let Some(r) = &self.redis {
            let full = r.key(&format!("rl:{key}"));
            if let Some((count, ttl_ms)) = r
                .run_script::<(i64, i64)>(&self.script, &[&full], &[window.as_millis() as i64])
                .await
            {
                return decide(
                    count.max(0) as u64,
                    limit,
                    (ttl_ms.max(0) as u64).div_ceil(1000),
                );
            }
        }
        self.check_local(key, limit, window)
    }

    fn check_local(&self, key: &str, limit: u32, window: Duration) -> Decision {
        let now = Instant::now();
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(local.last_sweep) > Duration::from_secs(60) {
            local.windows.retain(|_, (end, _)| *end > now);
            local.last_sweep = now;
        }
        let entry = local
            .windows
            .entry(key.to_string())
            .or_insert((now + window, 0));
        if entry.0 <= now {
            *entry = (now + window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        let reset = entry.0.saturating_duration_since(now).as_millis() as u64;
        decide(entry.1 as u64, limit, reset.div_ceil(1000))
    }
}

fn decide(count: u64, limit: u32, reset_seconds: u64) -> Decision {
    Decision {
        allowed: count <= limit as u64,
        limit,
        remaining: (limit as u64).saturating_sub(count) as u32,
        reset_seconds: reset_seconds.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_window_counts_and_resets() {
        let rl = RateLimiter::new(None);
        for i in 0..3 {
            let d = rl.check("k", 3, Duration::from_millis(200)).await;
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i);
        }
        assert!(!rl.check("k", 3, Duration::from_millis(200)).await.allowed);
        assert!(
            rl.check("other", 3, Duration::from_millis(200))
                .await
                .allowed
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(rl.check("k", 3, Duration::from_millis(200)).await.allowed);
    }
}
