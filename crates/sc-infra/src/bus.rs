//! The pub/sub bus. In-process (a tokio broadcast channel) by default; with Redis, every instance
//! holds exactly one subscription connection (a pattern subscription on the key prefix) and
//! re-subscribes by itself after Redis comes back. Publishing never blocks or fails a request.

use crate::redis_link::RedisLink;
use futures_util::StreamExt;
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub enum BusEvent {
    Message {
        channel: Arc<str>,
        payload: Arc<str>,
    },
    /// The cross-instance subscription was (re)established after a gap: anything cached on the
    /// strength of bus invalidations must be dropped.
    Resync,
}

#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<BusEvent>,
    redis: Option<RedisLink>,
    subscribed: Arc<AtomicBool>,
}

impl Bus {
    /// An in-process bus (single instance).
    pub fn in_process() -> Self {
        let (local, _) = broadcast::channel(4096);
        Self {
            local,
            redis: None,
            subscribed: Arc::new(AtomicBool::new(true)),
        }
    }

    /// A Redis-backed bus; spawns the subscription task, which stops on `shutdown`.
    pub fn redis(link: RedisLink, shutdown: CancellationToken) -> Self {
        let (local, _) = broadcast::channel(4096);
        let bus = Self {
            local,
            redis: Some(link),
            subscribed: Arc::new(AtomicBool::new(false)),
        };
        let task_bus = bus.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = task_bus.subscription_loop() => {}
            }
        });
        bus
    }

    /// True when events published on other instances reach this one.
    pub fn is_cross_instance(&self) -> bool {
        self.redis.is_some() && self.subscribed.load(Ordering::Relaxed)
    }

    pub fn is_distributed(&self) -> bool {
        self.redis.is_some()
    }

    /// Whether the bus currently delivers (always for in-process).
    pub fn is_live(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.local.subscribe()
    }

    /// Publishes on a channel. With Redis down the event is still delivered on this instance.
    pub async fn publish(&self, channel: &str, payload: &str) {
        self.publish_with(channel, payload, false).await
    }

    /// As `publish`, but tries Redis even while it is believed down (and once more on failure):
    /// for revocations, which must not wait out the circuit breaker.
    pub async fn publish_urgent(&self, channel: &str, payload: &str) {
        self.publish_with(channel, payload, true).await
    }

    async fn publish_with(&self, channel: &str, payload: &str, urgent: bool) {
        if let Some(r) = &self.redis {
            let cmd = redis::cmd("PUBLISH")
                .arg(r.key(&format!("bus:{channel}")))
                .arg(payload)
                .clone();
            let mut sent = if urgent {
                r.run_now::<i64>(&cmd).await.is_some()
            } else {
                r.run::<i64>(&cmd).await.is_some()
            };
            if !sent && urgent {
                sent = r.run_now::<i64>(&cmd).await.is_some();
            }
            if sent && self.is_cross_instance() {
                // Our own subscription delivers it back to this instance.
                return;
            }
        }
        let _ = self.local.send(BusEvent::Message {
            channel: channel.into(),
            payload: payload.into(),
        });
    }

    async fn subscription_loop(&self) {
        let Some(link) = self.redis.clone() else {
            return;
        };
        let pattern = link.key("bus:*");
        let strip = link.key("bus:");
        let mut backoff = Duration::from_millis(100);
        loop {
            match link.client().get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub.psubscribe(&pattern).await.is_ok() {
                        self.subscribed.store(true, Ordering::Relaxed);
                        link.set_healthy(true);
                        backoff = Duration::from_millis(100);
                        let _ = self.local.send(BusEvent::Resync);
                        let mut stream = pubsub.into_on_message();
                        while let Some(msg) = stream.next().await {
                            let channel = msg.get_channel_name();
                            let Some(channel) = channel.strip_prefix(strip.as_str()) else {
                                continue;
                            };
                            let Ok(payload) = std::str::from_utf8(msg.get_payload_bytes()) else {
                                continue;
                            };
                            let _ = self.local.send(BusEvent::Message {
                                channel: channel.into(),
                                payload: payload.into(),
                            });
                        }
                    }
                    self.subscribed.store(false, Ordering::Relaxed);
                    let _ = self.local.send(BusEvent::Resync);
                    link.set_healthy(false);
                }
                Err(_) => {
                    self.subscribed.store(false, Ordering::Relaxed);
                    link.set_healthy(false);
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}
