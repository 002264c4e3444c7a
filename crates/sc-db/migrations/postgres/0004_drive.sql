-- The drive: per-user storage accounting, files and folders, their versions, and the durable
-- queue of blob objects to delete.

-- Usage and reservations are counted here so a reservation is one conditional UPDATE that can
-- never take a user past the quota, however many uploads start at once.
CREATE TABLE storage_accounts (
    user_id  UUID PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    quota    BIGINT,                      -- NULL: the server's default_quota_bytes
    used     BIGINT NOT NULL DEFAULT 0,   -- bytes of every ready version
    reserved BIGINT NOT NULL DEFAULT 0    -- bytes of pending uploads
);

CREATE TABLE files (
    id           UUID PRIMARY KEY NOT NULL,
    owner_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    parent_id    UUID REFERENCES files (id),   -- deleted subtree-first by the service
    name         TEXT NOT NULL,
    is_folder    BOOLEAN NOT NULL,
    status       TEXT NOT NULL,           -- 'pending' until the first version completes, then 'ready'
    version      BIGINT NOT NULL,         -- the current version (0 while the first is pending)
    size         BIGINT NOT NULL,
    content_type TEXT,
    sha256       TEXT,
    encrypted    BOOLEAN NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
-- Names are unique per folder (the root included) for each owner.
CREATE UNIQUE INDEX files_name_in_folder
    ON files (owner_id, COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), name);
CREATE INDEX files_children ON files (parent_id, name, id);
CREATE INDEX files_owner_name ON files (owner_id, name, id);

-- Each version's object. A pending version is an upload in progress: its bytes are reserved in
-- storage_accounts until it completes or expires.
CREATE TABLE file_versions (
    file_id      UUID NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    blob_key     TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    sha256       TEXT,
    status       TEXT NOT NULL,           -- 'pending' | 'ready'
    expires_at   BIGINT,                  -- pending only: when the reservation lapses
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (file_id, version)
);
CREATE INDEX file_versions_pending ON file_versions (expires_at) WHERE status = 'pending';

-- Objects whose rows are gone: deleted by the cleanup worker, so a crash between the database
-- change and the object deletion leaves nothing behind.
CREATE TABLE blob_deletions (
    blob_key   TEXT PRIMARY KEY NOT NULL,
    queued_at  BIGINT NOT NULL
);
