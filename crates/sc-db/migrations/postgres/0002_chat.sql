-- Conversations, members, messages, reactions, realtime tickets, presence and in-app
-- notifications (PostgreSQL). Full-text search: a GIN expression index over plain message content.

CREATE TABLE conversations (
    id               UUID PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL,
    title            TEXT,
    avatar_url       TEXT,
    encrypted        BOOLEAN NOT NULL,
    created_by       UUID NOT NULL,
    created_at       BIGINT NOT NULL,
    last_message_seq BIGINT NOT NULL DEFAULT 0,
    last_activity_at BIGINT NOT NULL,
    direct_key       TEXT UNIQUE
);

CREATE TABLE conversation_members (
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    joined_at       BIGINT NOT NULL,
    read_seq        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user ON conversation_members (user_id);

CREATE TABLE messages (
    id                UUID PRIMARY KEY NOT NULL,
    conversation_id   UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq               BIGINT NOT NULL,
    sender_id         UUID NOT NULL,
    client_message_id TEXT NOT NULL,
    kind              TEXT NOT NULL,
    content           TEXT,
    ciphertext        TEXT,
    reply_to          UUID,
    metadata          TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    edited_at         BIGINT,
    deleted_at        BIGINT,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_message_id)
);

CREATE TABLE message_reactions (
    message_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL,
    emoji      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE TABLE realtime_tickets (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE presence (
    user_id      UUID PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    online_until BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE TABLE notifications (
    id          UUID PRIMARY KEY NOT NULL,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    read_at     BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, id);

-- Work for the notification worker: one row per message whose recipients were offline.
CREATE TABLE notification_jobs (
    id              UUID PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    done_at         BIGINT
);
CREATE INDEX notification_jobs_due ON notification_jobs (done_at, next_attempt_at);

CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', COALESCE(content, '')))
    WHERE content IS NOT NULL AND deleted_at IS NULL;
