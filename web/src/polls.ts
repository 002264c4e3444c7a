// Polls (API.md "Polls"): a message of kind "poll" whose `metadata.poll` holds the options and
// their live counts; what creating one sends, and reading it back safely.

export interface PollOption {
  id: number;
  text: string;
  votes: number;
}

export interface Poll {
  options: PollOption[];
  multiple: boolean;
  anonymous: boolean;
  closed: boolean;
  closes_at: string | null;
  voters: number;
  /** The reader's own option ids, when the view says (history pages); else null. */
  my_vote: number[] | null;
}

export const MIN_OPTIONS = 2;
export const MAX_OPTIONS = 10;
export const MAX_OPTION_CHARS = 200;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The poll a message's metadata holds (or an event's `poll`), or null if it holds none. */
export function readPoll(v: unknown): Poll | null {
  if (!isObject(v) || !Array.isArray(v["options"])) return null;
  const options: PollOption[] = [];
  for (const o of v["options"]) {
    if (!isObject(o) || typeof o["id"] !== "number" || typeof o["text"] !== "string") return null;
    options.push({ id: o["id"], text: o["text"], votes: typeof o["votes"] === "number" ? o["votes"] : 0 });
  }
  return {
    options,
    multiple: v["multiple"] === true,
    anonymous: v["anonymous"] === true,
    closed: v["closed"] === true,
    closes_at: typeof v["closes_at"] === "string" ? v["closes_at"] : null,
    voters: typeof v["voters"] === "number" ? v["voters"] : 0,
    my_vote:
      Array.isArray(v["my_vote"]) && v["my_vote"].every((x) => typeof x === "number") ? (v["my_vote"] as number[]) : null,
  };
}

export function pollOfMessage(m: { kind: string; deleted: boolean; metadata: unknown }): Poll | null {
  if (m.kind !== "poll" || m.deleted || !isObject(m.metadata)) return null;
  return readPoll(m.metadata["poll"]);
}

export interface PollDraft {
  question: string;
  options: string[];
  multiple: boolean;
  anonymous: boolean;
  /** A `datetime-local` value (local time) or "". */
  closesAt: string;
}

export type PollCheck =
  | { ok: true; content: string; poll: { options: string[]; multiple: boolean; anonymous: boolean; closes_at?: string } }
  | { ok: false; error: string };

/** What the form becomes: the message's content and `metadata.poll`, or why not yet. */
export function pollRequest(d: PollDraft, now: Date = new Date()): PollCheck {
  const question = d.question.trim();
  if (!question) return { ok: false, error: "Write the question." };
  const options = d.options.map((o) => o.trim()).filter((o) => o.length > 0);
  if (options.length < MIN_OPTIONS) return { ok: false, error: `A poll needs at least ${MIN_OPTIONS} options.` };
  if (options.length > MAX_OPTIONS) return { ok: false, error: `A poll has at most ${MAX_OPTIONS} options.` };
  if (options.some((o) => [...o].length > MAX_OPTION_CHARS))
    return { ok: false, error: `An option has at most ${MAX_OPTION_CHARS} characters.` };
  if (new Set(options.map((o) => o.toLowerCase())).size !== options.length)
    return { ok: false, error: "Each option once." };
  const poll: { options: string[]; multiple: boolean; anonymous: boolean; closes_at?: string } = {
    options,
    multiple: d.multiple,
    anonymous: d.anonymous,
  };
  if (d.closesAt) {
    const at = new Date(d.closesAt);
    if (Number.isNaN(at.getTime())) return { ok: false, error: "The closing time is not a date." };
    if (at.getTime() <= now.getTime()) return { ok: false, error: "The closing time must be in the future." };
    poll.closes_at = at.toISOString();
  }
  return { ok: true, content: question, poll };
}

/** A share of the votes as a whole percentage (0 when nobody voted). */
export function percent(votes: number, total: number): number {
  return total > 0 ? Math.round((votes / total) * 100) : 0;
}

/** Whether a poll is closed now: closed by hand, or past its closing time. */
export function isClosed(p: Poll, now: Date = new Date()): boolean {
  return p.closed || (p.closes_at !== null && new Date(p.closes_at).getTime() <= now.getTime());
}
