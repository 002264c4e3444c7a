//! Short per-instance caches that keep the database off the hot path of authenticated requests:
//! live session contexts, the account view of `GET /v1/users/me`, and conversation access for
//! sending. They only ever hold what was valid when read; changes remove entries at once on this
//! instance and, through the bus, on every other one. Session and account entries never live
//! longer than 500 ms even with a live bus, so a revocation whose announcement is lost (a Redis
//! blip, a race with a concurrent read) is still honoured everywhere within a second: revocation
//! never fails open. Conversation entries may live longer because they decide nothing on their
//! own (see `ConversationCache`).

use crate::AuthContext;
use sc_core::ids::{CallId, ConversationId, SessionId, UserId};
use sc_db::{chat::ConversationAccess, users::UserRow};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a cached entry may be used.
pub const CACHE_TTL: Duration = Duration::from_millis(500);
const MAX_ENTRIES: usize = 100_000;

/// A bounded map whose entries expire.
pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(v, _)| v.clone())
    }

    pub fn put(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (value, now + ttl));
    }

    pub fn remove(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Live sessions: session id → the caller's context.
pub type SessionCache = TtlCache<SessionId, AuthContext>;

/// Account views: user id → the row `GET /v1/users/me` shows.
pub type UserCache = TtlCache<UserId, UserRow>;

/// Conversations as sending sees them: id → kind, mode and members. Kind and mode never change;
/// the member list is only a hint, so it may live longer than the entries above: a member it
/// lacks makes the caller ask the database, and a member it still lists after removal is refused
/// by the message write, which checks membership and reads the recipients itself. Removals and
/// deletions drop the entry on every instance.
pub type ConversationCache = TtlCache<ConversationId, Arc<ConversationAccess>>;
pub const CONVERSATION_CACHE_TTL: Duration = Duration::from_secs(30);

/// A live call's participant sessions, as signaling relays to them: read once per call instead
/// of once per signal. Every transition drops the entry on every instance (after its commit);
/// the short lifetime bounds what a lost drop or a read racing a transition can leave: for at
/// most that long a signal may reach a session that just left or miss one that just joined.
pub type CallCache = TtlCache<CallId, Arc<[(UserId, SessionId)]>>;
pub const CALL_CACHE_TTL: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_removed() {
        let c: TtlCache<u32, &str> = TtlCache::default();
        c.put(1, "a", Duration::from_millis(30));
        c.put(2, "b", Duration::from_secs(30));
        assert_eq!(c.get(&1), Some("a"));
        c.remove(&2);
        assert_eq!(c.get(&2), None);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&1), None);
    }
}
