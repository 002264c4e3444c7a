-- Public links to drive files. Only a SHA-256 of the token is kept (tokens are 256 random bits,
-- so a fast hash suffices); the optional password is an Argon2id PHC string.
CREATE TABLE file_links (
    id              UUID PRIMARY KEY NOT NULL,
    file_id         UUID NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    created_by      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash      TEXT NOT NULL UNIQUE,
    password_hash   TEXT,
    expires_at      BIGINT,
    max_downloads   BIGINT,
    downloads       BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);
CREATE INDEX file_links_file ON file_links (file_id, created_at, id);

-- Files attached to messages: the message keeps the ordered list for display, this table gives
-- the conversation's members read access (while the message stands and they are members).
ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
CREATE TABLE message_attachments (
    file_id         UUID NOT NULL,
    message_id      UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL,
    PRIMARY KEY (file_id, message_id)
);
CREATE INDEX message_attachments_message ON message_attachments (message_id);
