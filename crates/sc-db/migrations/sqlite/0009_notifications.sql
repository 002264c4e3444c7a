-- Notifications that reach people (API.md §8): one record per (recipient, kind, source),
-- dispatched once (realtime event, pushes, immediate mail); preferences, mute, push
-- subscriptions and the durable push queue.

-- The source of a record (a message, a call, a share…): with (user_id, kind) its unique key,
-- so a retried worker never writes a second record.
ALTER TABLE notifications ADD COLUMN source TEXT;
-- Dispatch state: false until the realtime event, pushes and immediate mail were queued, in
-- the same transaction that sets it (a lease, `dispatch_until`, keeps two workers apart).
ALTER TABLE notifications ADD COLUMN dispatched BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE notifications ADD COLUMN dispatch_until BIGINT;
-- When the record went out by mail (at once, or in a digest): each is in at most one mail.
ALTER TABLE notifications ADD COLUMN mailed_at BIGINT;
-- Records from before this version were never meant to be pushed or mailed.
UPDATE notifications SET dispatched = TRUE, mailed_at = created_at;
CREATE UNIQUE INDEX notifications_once ON notifications (user_id, kind, source);
CREATE INDEX notifications_undispatched ON notifications (created_at) WHERE NOT dispatched;
CREATE INDEX notifications_digest ON notifications (created_at)
    WHERE mailed_at IS NULL AND read_at IS NULL AND kind IN ('message', 'mention');
CREATE INDEX notifications_unread ON notifications (user_id, id) WHERE read_at IS NULL;

-- The mentioned members of a plain message: user ids, comma-separated, or 'all' (@all).
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';

-- Per-kind push and email switches; a missing row means the defaults (both on).
CREATE TABLE notification_settings (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    push    BOOLEAN NOT NULL,
    email   BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, kind)
);
ALTER TABLE users ADD COLUMN email_digest BOOLEAN NOT NULL DEFAULT TRUE;

-- A member's mute of one conversation, until a time.
ALTER TABLE conversation_members ADD COLUMN muted_until BIGINT;

-- Push subscriptions: each belongs to the session that made it.
CREATE TABLE push_subscriptions (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id  BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,       -- 'webpush' | 'fcm' | 'apns'
    address     TEXT NOT NULL,       -- the Web Push endpoint, or the FCM / APNs device token
    p256dh      TEXT,                -- Web Push: the client's P-256 key (base64url)
    auth        TEXT,                -- Web Push: the client's auth secret (base64url)
    environment TEXT,                -- APNs: 'production' | 'sandbox'
    device_name TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (kind, address)
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id, id);
CREATE INDEX push_subscriptions_session ON push_subscriptions (session_id);

-- The push queue: one row per (subscription, message to send). Rows with a topic collapse:
-- while one waits, a newer push for the same topic replaces its payload.
CREATE TABLE push_deliveries (
    id              BLOB PRIMARY KEY NOT NULL,
    subscription_id BLOB NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    payload         TEXT NOT NULL,
    topic           TEXT,
    urgency         TEXT NOT NULL,
    ttl_seconds     BIGINT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued',  -- 'queued' | 'sending' | 'dead'
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    last_error      TEXT
);
CREATE UNIQUE INDEX push_deliveries_collapse ON push_deliveries (subscription_id, topic)
    WHERE state = 'queued' AND topic IS NOT NULL;
CREATE INDEX push_deliveries_due ON push_deliveries (next_attempt_at) WHERE state <> 'dead';
CREATE INDEX push_deliveries_dead ON push_deliveries (created_at) WHERE state = 'dead';
CREATE INDEX push_deliveries_subscription ON push_deliveries (subscription_id);

-- When each topic last went out to a subscription: the next one waits out the collapse window.
CREATE TABLE push_topics (
    subscription_id BLOB NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    topic           TEXT NOT NULL,
    last_sent_at    BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, topic)
);

-- Mail parts beyond the plain text: an HTML alternative and a List-Unsubscribe target.
ALTER TABLE mail_queue ADD COLUMN html_body TEXT;
ALTER TABLE mail_queue ADD COLUMN list_unsubscribe TEXT;
