// Pure rules behind the group administration, scheduled calls, receipts and profile extras
// (API.md §3–4, §7): who may do what, and the conversions between form fields and the API.

export type Role = "owner" | "admin" | "member";

/** Renaming, the avatar link and adding members: owner or admin of a group. */
export function canManage(kind: string, myRole: string): boolean {
  return kind === "group" && (myRole === "owner" || myRole === "admin");
}

/** Roles, retention and deleting the group: its owner only. */
export function isOwner(kind: string, myRole: string): boolean {
  return kind === "group" && myRole === "owner";
}

/** Owner/admin remove anyone but the owner, and never themself here (that is "Leave"). */
export function canRemove(myRole: string, me: string, member: { user_id: string; role: string }): boolean {
  if (member.user_id === me || member.role === "owner") return false;
  return myRole === "owner" || myRole === "admin";
}

/** The roles the owner may give another member ("owner" hands over ownership). */
export function roleChoices(myRole: string, me: string, member: { user_id: string; role: string }): Role[] {
  if (myRole !== "owner" || member.user_id === me || member.role === "owner") return [];
  return ["member", "admin", "owner"];
}

/** Usernames typed as "alice, @bob carol" → ["alice", "bob", "carol"], lower-cased, no repeats. */
export function parseUsernames(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/[\s,]+/)) {
    const u = raw.replace(/^@/, "").toLowerCase();
    if (u && !out.includes(u)) out.push(u);
  }
  return out;
}

/** The retention field: "" → null (the server's default), else a whole number of days ≥ 1. */
export function parseRetention(text: string): { ok: true; days: number | null } | { ok: false; message: string } {
  const t = text.trim();
  if (t === "") return { ok: true, days: null };
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 36500) {
    return { ok: false, message: "Retention is a whole number of days (1 or more), or empty for the server's default." };
  }
  return { ok: true, days: Number(t) };
}

/** An optional https link (avatar): "" → null; anything but https is refused before the server. */
export function parseHttpsUrl(text: string): { ok: true; url: string | null } | { ok: false; message: string } {
  const t = text.trim();
  if (t === "") return { ok: true, url: null };
  try {
    const u = new URL(t);
    if (u.protocol === "https:") return { ok: true, url: u.toString() };
  } catch {
    // fall through
  }
  return { ok: false, message: "The avatar must be an https:// link." };
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** A Date as the value of an <input type="datetime-local"> (local time, minutes). */
export function toLocalInput(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local value → RFC 3339 (UTC) in the future, or an error for the person. */
export function scheduleTime(value: string, now = Date.now()): { ok: true; iso: string } | { ok: false; message: string } {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value);
  if (!m) return { ok: false, message: "Choose a date and time." };
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  if (Number.isNaN(d.getTime())) return { ok: false, message: "Choose a date and time." };
  if (d.getTime() <= now) return { ok: false, message: "The call must start in the future." };
  if (d.getTime() > now + 365 * 24 * 3600 * 1000) return { ok: false, message: "The call must start within a year." };
  return { ok: true, iso: d.toISOString() };
}

export interface ScheduledLike {
  id: string;
  cancelled: boolean;
  starts_at: string;
}

/** The calls still to come (or started less than an hour ago), soonest first. */
export function upcoming<T extends ScheduledLike>(calls: T[], now = Date.now()): T[] {
  return calls
    .filter((c) => !c.cancelled && Date.parse(c.starts_at) > now - 3600_000)
    .sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at));
}

/** Who has read a message of sequence `seq` (not its sender), from the receipts. */
export function readers(receipts: { user_id: string; read_seq: number }[], seq: number, except: string): string[] {
  return receipts.filter((r) => r.user_id !== except && r.read_seq >= seq).map((r) => r.user_id);
}

/** "Seen by Bob", "Seen by Bob and Carol", "Seen by Bob, Carol and 2 others", or "" . */
export function seenLine(names: string[]): string {
  if (names.length === 0) return "";
  if (names.length === 1) return `Seen by ${names[0]}`;
  if (names.length === 2) return `Seen by ${names[0]} and ${names[1]}`;
  const rest = names.length - 2;
  return `Seen by ${names[0]}, ${names[1]} and ${rest} ${rest === 1 ? "other" : "others"}`;
}

interface StatLike {
  mean: number;
  p95: number;
}

/** One line of call quality: "round trip 42 ms (p95 80), jitter 3 ms, loss 0.5 %, 1200 kbps, 12 samples". */
export function qualityLines(q: { rtt_ms: StatLike; jitter_ms: StatLike; packet_loss: StatLike; bitrate_kbps: StatLike; samples: number }): string {
  const r = (n: number) => (Math.abs(n) >= 10 ? Math.round(n).toString() : (Math.round(n * 10) / 10).toString());
  // packet_loss is a fraction (0–1) in the samples; shown as a percentage.
  const loss = q.packet_loss.mean * 100;
  return [
    `round trip ${r(q.rtt_ms.mean)} ms (p95 ${r(q.rtt_ms.p95)})`,
    `jitter ${r(q.jitter_ms.mean)} ms`,
    `loss ${r(loss)} %`,
    `${r(q.bitrate_kbps.mean)} kbps`,
    `${q.samples} ${q.samples === 1 ? "sample" : "samples"}`,
  ].join(", ");
}

/** A presence for people: "Online", "Away", "Offline" (with when last seen when known). */
export function presenceLabel(p: { status: string; last_seen_at?: string | null } | undefined, ago: (iso: string) => string): string {
  if (!p) return "";
  if (p.status === "online") return "Online";
  if (p.status === "away") return "Away";
  return p.last_seen_at ? `Offline, last seen ${ago(p.last_seen_at)}` : "Offline";
}
