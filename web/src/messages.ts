// The message timeline of one conversation: history pages, catch-up pages and realtime events
// arrive in any order and may overlap; merging keeps one copy of each message, in seq order.

export interface MessageLike {
  id: string;
  seq: number;
  client_message_id: string;
  edited_at?: string | null;
  deleted: boolean;
}

/** Which of two copies of the same message is the later state of it. */
function later<T extends MessageLike>(a: T, b: T): T {
  // A tombstone is final: a copy from before the delete must not bring the text back.
  if (a.deleted !== b.deleted) return a.deleted ? a : b;
  const ea = a.edited_at ?? "";
  const eb = b.edited_at ?? "";
  // RFC 3339 UTC with fixed milliseconds compares correctly as text.
  if (ea !== eb) return ea > eb ? a : b;
  // Same state (or reactions changed): the one that arrived last carries the newest counts.
  return b;
}

/** Merges `incoming` into `current` (both any order): unique by id, ascending by seq. */
export function mergeMessages<T extends MessageLike>(current: readonly T[], incoming: readonly T[]): T[] {
  const byId = new Map<string, T>();
  for (const m of current) byId.set(m.id, m);
  for (const m of incoming) {
    const had = byId.get(m.id);
    byId.set(m.id, had ? later(had, m) : m);
  }
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

/** The seq to catch up after: the highest one held with no gap below it from the first held. */
export function catchUpSeq(messages: readonly MessageLike[]): number {
  if (messages.length === 0) return 0;
  // Sorted by mergeMessages; a gap means a missed event, so catch up from before it.
  let seq = messages[0]!.seq;
  for (const m of messages) {
    if (m.seq > seq + 1) break;
    seq = m.seq;
  }
  return seq;
}

/** A message typed here and sent, not yet confirmed by the server. */
export interface PendingMessage {
  client_message_id: string;
  content: string;
  failed: boolean;
  /** The message this one replies to. */
  reply_to?: string | null;
}

/** Drops the pending entries the server has confirmed (same client_message_id). */
export function settlePending(
  pending: readonly PendingMessage[],
  confirmed: readonly MessageLike[],
): PendingMessage[] {
  const ids = new Set(confirmed.map((m) => m.client_message_id));
  return pending.filter((p) => !ids.has(p.client_message_id));
}

/** A client_message_id (1–64 of [A-Za-z0-9_-]) unique enough per sender: 128 random bits. */
export function newClientMessageId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "web-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
