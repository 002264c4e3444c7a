-- Member lists page in joining order (keyset on joined_at, user_id): a deep page of a
-- 10,000-member group reads only its own rows.
CREATE INDEX conversation_members_joined ON conversation_members (conversation_id, joined_at, user_id);
