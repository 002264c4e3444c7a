-- Administration: bans that may have no end, who did what in the audit log, and each instance's
-- socket count for deployment-wide stats (SQLite).

-- A ban is in force while banned_at is set and banned_until is NULL (indefinite) or in the future.
ALTER TABLE users ADD COLUMN banned_at BIGINT;
UPDATE users SET banned_at = updated_at WHERE banned_until IS NOT NULL;

ALTER TABLE audit_log ADD COLUMN actor_id BLOB;
CREATE INDEX audit_log_event ON audit_log (event, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_created ON audit_log (created_at);

-- Each instance reports its open sockets here every few seconds; rows not renewed are stale.
CREATE TABLE instance_stats (
    instance_id BLOB PRIMARY KEY NOT NULL,
    sockets     BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);

-- Retention purges walk these by age.
CREATE INDEX notifications_created ON notifications (created_at);

-- Message retention chosen by a conversation's owner (days; NULL: the server's).
ALTER TABLE conversations ADD COLUMN retention_days BIGINT;
CREATE INDEX messages_created ON messages (created_at);
CREATE INDEX messages_conversation_created ON messages (conversation_id, created_at);
