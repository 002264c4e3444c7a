-- AI helpers (API.md §9): the user's opt-in, the conversation's switch, and the built-in
-- assistant account.

ALTER TABLE users ADD COLUMN ai_enabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE conversations ADD COLUMN ai_enabled BOOLEAN NOT NULL DEFAULT FALSE;

-- The assistant posts replies under its own id. It cannot sign in (its password hash is no
-- hash at all), its email and username cannot be registered (neither parses), and it is never
-- a member of anything.
INSERT INTO users (id, email, email_normalized, username, display_name, search_name,
                   password_hash, email_verified, role, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-00000000a551', 'assistant', 'assistant', '~assistant', 'Assistant',
        'assistant', '!', TRUE, 'assistant', 0, 0);
