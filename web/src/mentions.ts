// `@username` mentions: the completion the composer offers while one is typed, what choosing one
// inserts, and whether a message mentions me (the server matches `@username` of a member,
// case-insensitively on word boundaries, and says so in the message's `mentions`).

export interface MentionCandidate {
  user_id: string;
  username: string;
  display_name: string;
}

export interface ActiveMention {
  /** Index of the `@`. */
  start: number;
  /** What follows it up to the caret, lowercased. */
  query: string;
}

const USERNAME_CHAR = /[A-Za-z0-9_.]/;

/** The mention being typed at `caret`: an `@` at the start or after a non-word character. */
export function activeMention(text: string, caret: number): ActiveMention | null {
  let i = caret;
  while (i > 0 && USERNAME_CHAR.test(text[i - 1]!)) i--;
  if (i === 0 || text[i - 1] !== "@") return null;
  const at = i - 1;
  if (at > 0 && /[A-Za-z0-9_.@]/.test(text[at - 1]!)) return null;
  const query = text.slice(i, caret);
  if (query.length > 32) return null;
  return { start: at, query: query.toLowerCase() };
}

/** Members matching `query` (username or a word of the display name, by prefix), me excluded. */
export function mentionCompletions<T extends MentionCandidate>(
  members: readonly T[],
  query: string,
  me: string,
  limit = 8,
): T[] {
  const q = query.toLowerCase();
  const rank = (m: T): number => {
    const u = m.username.toLowerCase();
    if (u.startsWith(q)) return 0;
    if (m.display_name.toLowerCase().split(/\s+/).some((w) => w.startsWith(q))) return 1;
    if (q && u.includes(q)) return 2;
    return -1;
  };
  return members
    .filter((m) => m.user_id !== me)
    .map((m) => [m, rank(m)] as const)
    .filter(([, r]) => r >= 0)
    .sort((a, b) => a[1] - b[1] || a[0].username.localeCompare(b[0].username))
    .slice(0, limit)
    .map(([m]) => m);
}

/** Replaces the mention being typed with `@username ` and says where the caret goes. */
export function insertMention(
  text: string,
  mention: ActiveMention,
  caret: number,
  username: string,
): { text: string; caret: number } {
  const before = text.slice(0, mention.start) + "@" + username;
  const rest = text.slice(caret);
  const sep = rest.startsWith(" ") ? "" : " ";
  return { text: before + sep + rest, caret: before.length + 1 };
}

/** Whether a message mentions `me`: named in `mentions`, or `@all`; never one's own message. */
export function mentionsMe(
  m: { sender_id: string; mentions?: readonly string[]; mentions_all?: boolean },
  me: string,
): boolean {
  if (m.sender_id === me) return false;
  return (m.mentions ?? []).includes(me) || m.mentions_all === true;
}
