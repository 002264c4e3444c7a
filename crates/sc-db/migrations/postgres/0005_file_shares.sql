-- Shares of drive files and folders: to one user, or to a conversation's members (whoever is a
-- member at the time of access). A folder's share covers everything below it.
CREATE TABLE file_shares (
    id              UUID PRIMARY KEY NOT NULL,
    file_id         UUID NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id         UUID REFERENCES users (id) ON DELETE CASCADE,
    conversation_id UUID REFERENCES conversations (id) ON DELETE CASCADE,
    permission      TEXT NOT NULL,           -- 'read' | 'write'
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX file_shares_to_user ON file_shares (file_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX file_shares_to_conversation ON file_shares (file_id, conversation_id) WHERE conversation_id IS NOT NULL;
CREATE INDEX file_shares_user ON file_shares (user_id, created_at, id);
CREATE INDEX file_shares_conversation ON file_shares (conversation_id, created_at, id);
