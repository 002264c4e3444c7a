-- Accounts, sessions, one-time tokens, mail queue and audit log (PostgreSQL).
-- Ids are UUIDs (uuid here, 16-byte BLOB in SQLite); times are Unix milliseconds.

CREATE TABLE users (
    id                       UUID PRIMARY KEY NOT NULL,
    email                    TEXT NOT NULL,
    email_normalized         TEXT NOT NULL UNIQUE,
    username                 TEXT NOT NULL UNIQUE,
    display_name             TEXT NOT NULL,
    search_name              TEXT NOT NULL,
    avatar_url               TEXT,
    password_hash            TEXT NOT NULL,
    email_verified           BOOLEAN NOT NULL DEFAULT FALSE,
    role                     TEXT NOT NULL DEFAULT 'user',
    totp_secret_enc          TEXT,
    totp_enabled             BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step           BIGINT NOT NULL DEFAULT 0,
    failed_login_count       INTEGER NOT NULL DEFAULT 0,
    failed_login_window_start BIGINT,
    locked_until             BIGINT,
    banned_until             BIGINT,
    ban_reason               TEXT,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
CREATE INDEX users_search_name ON users (search_name);

CREATE TABLE sessions (
    id                  UUID PRIMARY KEY NOT NULL,
    user_id             UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_name         TEXT,
    ip                  TEXT,
    user_agent          TEXT,
    created_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL,
    idle_expires_at     BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    revoked_at          BIGINT,
    revoked_reason      TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_at);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    session_id  UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    rotated_at  BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE one_time_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

CREATE TABLE recovery_codes (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE blocks (
    blocker_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_blocked ON blocks (blocked_id);

CREATE TABLE mail_queue (
    id              UUID PRIMARY KEY NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    sent_at         BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX mail_queue_due ON mail_queue (sent_at, failed_at, next_attempt_at);

CREATE TABLE audit_log (
    id          UUID PRIMARY KEY NOT NULL,
    user_id     UUID,
    event       TEXT NOT NULL,
    ip          TEXT,
    details     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_log_user ON audit_log (user_id, created_at);
