//! A short per-instance cache of live sessions, so most authenticated requests need no database
//! read. It only ever caches "valid"; revocations remove entries at once on this instance and,
//! through the bus, on every other one. When the bus cannot reach other instances the entries
//! live 500 ms, so a revocation elsewhere is honoured within a second and never fails open.

use crate::AuthContext;
use sc_core::ids::{SessionId, UserId};
use sc_db::users::UserRow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const TTL_WITH_BUS: Duration = Duration::from_secs(30);
pub const TTL_WITHOUT_BUS: Duration = Duration::from_millis(500);
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct SessionCache {
    map: Mutex<HashMap<SessionId, (AuthContext, Instant)>>,
}

impl SessionCache {
    pub fn get(&self, id: SessionId) -> Option<AuthContext> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(ctx, _)| *ctx)
    }

    pub fn put(&self, ctx: AuthContext, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(ctx.session_id, (ctx, now + ttl));
    }

    pub fn remove(&self, id: SessionId) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Accounts as `GET /v1/users/me` shows them, under the same rules as the session cache: every
/// change of a shown field drops the entry here and, through the bus, on every instance.
#[derive(Default)]
pub struct UserCache {
    map: Mutex<HashMap<UserId, (UserRow, Instant)>>,
}

impl UserCache {
    pub fn get(&self, id: UserId) -> Option<UserRow> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(u, _)| u.clone())
    }

    pub fn put(&self, user: UserRow, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(user.id, (user, now + ttl));
    }

    pub fn remove(&self, id: UserId) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
