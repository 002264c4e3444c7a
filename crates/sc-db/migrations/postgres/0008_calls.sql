-- Calls: one live (ringing or active) call per conversation, participants per session.
CREATE TABLE calls (
    id               UUID PRIMARY KEY NOT NULL,
    conversation_id  UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,             -- 'audio' | 'video'
    status           TEXT NOT NULL,             -- 'ringing' | 'active' | 'ended' | 'missed' | 'declined'
    created_by       UUID NOT NULL,
    max_participants BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    ended_at         BIGINT,
    -- A client-side recording in progress: who records, since when (consent made visible).
    recording_by         UUID,
    recording_started_at BIGINT
);
CREATE UNIQUE INDEX calls_one_live ON calls (conversation_id) WHERE status IN ('ringing', 'active');
CREATE INDEX calls_conversation ON calls (conversation_id, created_at, id);
CREATE INDEX calls_ringing ON calls (created_at) WHERE status = 'ringing';
CREATE INDEX calls_ended ON calls (ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE call_participants (
    call_id      UUID NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    session_id   UUID NOT NULL,
    user_id      UUID NOT NULL,
    joined_at    BIGINT NOT NULL,
    left_at      BIGINT,
    last_seen_at BIGINT NOT NULL,
    audio        BOOLEAN NOT NULL DEFAULT TRUE,
    video        BOOLEAN NOT NULL DEFAULT FALSE,
    screen       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (call_id, session_id, joined_at)
);
-- A session is in a call at most once at a time.
CREATE UNIQUE INDEX call_participants_active ON call_participants (call_id, session_id) WHERE left_at IS NULL;
CREATE INDEX call_participants_seen ON call_participants (last_seen_at) WHERE left_at IS NULL;
CREATE INDEX call_participants_user ON call_participants (user_id, call_id);

-- Members of a group call who declined it.
CREATE TABLE call_declines (
    call_id     UUID NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    user_id     UUID NOT NULL,
    declined_at BIGINT NOT NULL,
    PRIMARY KEY (call_id, user_id)
);

-- Recordings a participant's client made (start and stop are visible to everyone in the
-- call); the file the recorder uploads to the drive is attached afterwards, and the call's
-- participants may read it.
CREATE TABLE call_recordings (
    call_id     UUID NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    recorded_by UUID NOT NULL,
    started_at  BIGINT NOT NULL,
    stopped_at  BIGINT NOT NULL,
    file_id     UUID,
    PRIMARY KEY (call_id, recorded_by, started_at)
);
CREATE INDEX call_recordings_file ON call_recordings (file_id);

-- Quality samples posted by participants.
CREATE TABLE call_quality (
    call_id      UUID NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    session_id   UUID NOT NULL,
    user_id      UUID NOT NULL,
    at           BIGINT NOT NULL,
    rtt_ms       DOUBLE PRECISION NOT NULL,
    jitter_ms    DOUBLE PRECISION NOT NULL,
    packet_loss  DOUBLE PRECISION NOT NULL,
    bitrate_kbps DOUBLE PRECISION NOT NULL
);
CREATE INDEX call_quality_call ON call_quality (call_id, session_id, at);

-- Calls planned ahead: members are told, and reminded (a call.scheduled notification) at the
-- start time by the sweeper, exactly once (reminded_at is set in the same transaction).
CREATE TABLE scheduled_calls (
    id              UUID PRIMARY KEY NOT NULL,
    conversation_id UUID NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    created_by      UUID NOT NULL,
    kind            TEXT NOT NULL,
    title           TEXT,
    starts_at       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    reminded_at     BIGINT,
    cancelled_at    BIGINT
);
CREATE INDEX scheduled_calls_conversation ON scheduled_calls (conversation_id, starts_at, id);
CREATE INDEX scheduled_calls_due ON scheduled_calls (starts_at) WHERE reminded_at IS NULL AND cancelled_at IS NULL;
