-- The MLS Delivery Service (API.md §10): devices (one per session), key packages, commits
-- ordered by a per-conversation epoch, the latest group info and pending welcomes. Every MLS
-- object is opaque bytes to the server (SQLite).

CREATE TABLE devices (
    id            BLOB PRIMARY KEY NOT NULL,
    session_id    BLOB NOT NULL UNIQUE REFERENCES sessions (id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    signature_key BLOB NOT NULL,
    credential    BLOB NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX devices_user ON devices (user_id, id);

CREATE TABLE key_packages (
    id          BLOB PRIMARY KEY NOT NULL,
    device_id   BLOB NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    package     BLOB NOT NULL,
    last_resort BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX key_packages_device ON key_packages (device_id, last_resort, id);
CREATE UNIQUE INDEX key_packages_one_last_resort ON key_packages (device_id) WHERE last_resort;

ALTER TABLE conversations ADD COLUMN mls_epoch BIGINT NOT NULL DEFAULT 0;

-- `epoch`: the epoch the commit creates.
CREATE TABLE mls_commits (
    conversation_id  BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    epoch            BIGINT NOT NULL,
    sender_device_id BLOB NOT NULL,
    commit_data      BLOB NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, epoch)
);

CREATE TABLE mls_group_info (
    conversation_id BLOB PRIMARY KEY NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    epoch           BIGINT NOT NULL,
    group_info      BLOB NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE mls_welcomes (
    id              BLOB PRIMARY KEY NOT NULL,
    device_id       BLOB NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    epoch           BIGINT NOT NULL,
    welcome         BLOB NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX mls_welcomes_device ON mls_welcomes (device_id, id);
