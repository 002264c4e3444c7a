-- Polls: a message of kind 'poll' keeps its (immutable) definition in metadata and its closing
-- times here; votes are rows, so counts are derived, never read-modified-written.
ALTER TABLE messages ADD COLUMN poll_closes_at BIGINT;
ALTER TABLE messages ADD COLUMN poll_closed_at BIGINT;
CREATE INDEX messages_poll_closing ON messages (poll_closes_at)
    WHERE poll_closes_at IS NOT NULL AND poll_closed_at IS NULL;
CREATE TABLE poll_votes (
    message_id  UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    option_id   INTEGER NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, option_id)
);
