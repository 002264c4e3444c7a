//! Fixed-window rate limits. With Redis the count is shared by every instance; while Redis is
//! unreachable each instance counts on its own, so limits degrade to per-instance rather than
//! failing open or closed.
//!
//! Asking Redis on every request would put a round trip on every authenticated read, so each
//! instance counts locally and sends its hits in batches (every [`FLUSH_EVERY`], one pipeline
//! for all keys). A decision is taken against Redis at once, not from the local estimate, when
//! the estimate cannot be trusted to stay under the limit: the first hit of a window, small
//! limits, a key close to its limit, or more unsent hits than a share of what is left. What the
//! other instances have not sent yet is the only error, bounded by that share per instance.

use crate::redis_link::RedisLink;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_seconds: u64,
}

/// How often unsent hits go to Redis.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Limits this small are always decided by Redis (login and other per-IP auth limits).
const EXACT_UP_TO: u32 = 20;
/// An instance may hold at most 1/16 of what is left of a limit unconfirmed (unsent or sent
/// without an answer yet).
const UNSENT_SHARE: u64 = 16;

pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    windows: Mutex<Windows>,
    redis: Option<RedisLink>,
}

struct Windows {
    by_key: HashMap<String, Window>,
    /// Without Redis, or while it is away: this instance's own hits per window.
    offline: HashMap<String, (Instant, u64)>,
    last_sweep: Instant,
}

struct Window {
    ends: Instant,
    window: Duration,
    /// The shared count as Redis last reported it (this instance's sent hits included).
    known: u64,
    /// Hits counted here and not yet sent.
    unsent: u64,
    /// Hits on their way to Redis.
    sending: u64,
}

impl Window {
    fn new(now: Instant, window: Duration) -> Self {
        Self {
            ends: now + window,
            window,
            known: 0,
            unsent: 0,
            sending: 0,
        }
    }

    fn estimate(&self) -> u64 {
        self.known + self.unsent + self.sending
    }

    /// Takes in what Redis said after adding `sent` hits.
    fn reconcile(&mut self, sent: u64, reply: WindowReply, now: Instant) {
        self.sending = self.sending.saturating_sub(sent);
        self.known = if reply.created {
            reply.count
        } else {
            // Replies may arrive out of order; within a window the count only grows.
            self.known.max(reply.count)
        };
        self.ends = now + reply.ttl;
    }
}

#[derive(Clone, Copy)]
struct WindowReply {
    created: bool,
    count: u64,
    ttl: Duration,
}

impl RateLimiter {
    pub fn new(redis: Option<RedisLink>) -> Self {
        let inner = Arc::new(Inner {
            windows: Mutex::new(Windows {
                by_key: HashMap::new(),
                offline: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            redis,
        });
        if inner.redis.is_some()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(flush_loop(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    /// Counts one hit on `key` and says whether it is within `limit` per `window`.
    pub async fn check(&self, key: &str, limit: u32, window: Duration) -> Decision {
        let now = Instant::now();
        let Some(redis) = &self.inner.redis else {
            return self.inner.lock().count_offline(key, window, now, limit);
        };
        let to_send = {
            let mut w = self.inner.lock();
            w.sweep(now);
            let entry = w.entry(key, now, window);
            let estimate = entry.estimate() + 1;
            let left = (limit as u64).saturating_sub(entry.known);
            let margin = (limit as u64 / 10).max(EXACT_UP_TO as u64);
            let trust_local = entry.known > 0
                && limit > EXACT_UP_TO
                && estimate + margin <= limit as u64
                && entry.unsent + entry.sending < left / UNSENT_SHARE;
            if trust_local {
                entry.unsent += 1;
                return decide(estimate, limit, entry.ends, now);
            }
            let n = entry.unsent + 1;
            entry.unsent = 0;
            entry.sending += n;
            n
        };
        let reply = send(redis, &[(key, to_send, window)]).await;
        let now = Instant::now();
        let mut w = self.inner.lock();
        let entry = w.entry(key, now, window);
        match reply.and_then(|r| r.into_iter().next()) {
            Some(r) => {
                entry.reconcile(to_send, r, now);
                // Redis counted this hit after every hit it had before: that is its place.
                decide(r.count, limit, entry.ends, now)
            }
            None => {
                entry.sending = entry.sending.saturating_sub(to_send);
                w.count_offline(key, window, now, limit)
            }
        }
    }

    /// Sends every unsent hit to Redis now.
    pub async fn flush(&self) {
        self.inner.flush().await;
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn flush(&self) {
        let Some(redis) = &self.redis else { return };
        let batch: Vec<(String, u64, Duration)> = {
            let mut w = self.lock();
            w.by_key
                .iter_mut()
                .filter(|(_, e)| e.unsent > 0)
                .map(|(k, e)| {
                    let n = std::mem::take(&mut e.unsent);
                    e.sending += n;
                    (k.clone(), n, e.window)
                })
                .collect()
        };
        if batch.is_empty() {
            return;
        }
        let items: Vec<(&str, u64, Duration)> =
            batch.iter().map(|(k, n, d)| (k.as_str(), *n, *d)).collect();
        let replies = send(redis, &items).await;
        let now = Instant::now();
        let mut w = self.lock();
        for (i, (key, n, _)) in batch.iter().enumerate() {
            let Some(e) = w.by_key.get_mut(key) else {
                continue;
            };
            match replies.as_ref().and_then(|r| r.get(i)) {
                Some(r) => e.reconcile(*n, *r, now),
                None => {
                    e.sending = e.sending.saturating_sub(*n);
                    e.unsent += n;
                }
            }
        }
    }
}

impl Windows {
    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) > Duration::from_secs(60) {
            self.by_key.retain(|_, e| e.ends > now);
            self.offline.retain(|_, (ends, _)| *ends > now);
            self.last_sweep = now;
        }
    }

    fn count_offline(&mut self, key: &str, window: Duration, now: Instant, limit: u32) -> Decision {
        if !self.offline.contains_key(key) {
            self.offline.insert(key.to_string(), (now + window, 0));
        }
        let (ends, count) = self.offline.get_mut(key).expect("inserted above");
        if *ends <= now {
            (*ends, *count) = (now + window, 0);
        }
        *count += 1;
        decide(*count, limit, *ends, now)
    }

    fn entry(&mut self, key: &str, now: Instant, window: Duration) -> &mut Window {
        if !self.by_key.contains_key(key) {
            self.by_key
                .insert(key.to_string(), Window::new(now, window));
        }
        let e = self.by_key.get_mut(key).expect("inserted above");
        if e.ends <= now {
            // Hits still on their way belong to the old window.
            *e = Window::new(now, window);
        }
        e
    }
}

async fn flush_loop(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.flush().await;
    }
}

/// Adds `n` hits to each key's window in one transaction, creating windows that do not exist,
/// and returns each window's count and remaining time.
async fn send(redis: &RedisLink, items: &[(&str, u64, Duration)]) -> Option<Vec<WindowReply>> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (key, n, window) in items {
        let full = redis.key(&format!("rl:{key}"));
        let ms = window.as_millis() as u64;
        pipe.cmd("SET")
            .arg(&full)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .cmd("INCRBY")
            .arg(&full)
            .arg(*n)
            .cmd("PTTL")
            .arg(&full);
    }
    let raw: Vec<redis::Value> = redis.run_pipe(&pipe).await?;
    if raw.len() != items.len() * 3 {
        return None;
    }
    raw.chunks(3)
        .zip(items)
        .map(|(r, (_, _, window))| {
            let created = matches!(r[0], redis::Value::Okay);
            let count: i64 = redis::from_redis_value(r[1].clone()).ok()?;
            let ttl_ms: i64 = redis::from_redis_value(r[2].clone()).ok()?;
            // A key without expiry (-1) cannot come from here; treat it as a fresh window.
            let ttl = if ttl_ms > 0 {
                Duration::from_millis(ttl_ms as u64)
            } else {
                *window
            };
            Some(WindowReply {
                created,
                count: count.max(0) as u64,
                ttl,
            })
        })
        .collect()
}

fn decide(count: u64, limit: u32, ends: Instant, now: Instant) -> Decision {
    let reset = ends.saturating_duration_since(now).as_millis() as u64;
    Decision {
        allowed: count <= limit as u64,
        limit,
        remaining: (limit as u64).saturating_sub(count) as u32,
        reset_seconds: reset.div_ceil(1000).max(1),
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

    #[tokio::test]
    async fn an_unreachable_redis_counts_here() {
        // Nothing listens on port 1: every send fails, and the limit still holds per instance.
        let redis = RedisLink::new("redis://127.0.0.1:1", "t:").unwrap();
        let rl = RateLimiter::new(Some(redis));
        let allowed = {
            let mut n = 0;
            for _ in 0..150 {
                n += rl.check("k", 100, Duration::from_secs(60)).await.allowed as u32;
            }
            n
        };
        assert_eq!(allowed, 100);
    }
}
