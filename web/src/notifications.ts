// Notifications (API.md §8 and its §12 precisions): what a notification says, where it leads,
// the unread count as events arrive, mute durations, and the VAPID key for PushManager.
// Pure functions only: the screens are in ui/Notifications.tsx, the browser glue in push.ts.

/** The notification object of the list and of the realtime `notification` event. */
export interface AppNotification {
  id: string;
  kind: string;
  data: Record<string, unknown>;
  read_at?: string | null;
  created_at: string;
}

/** Names the page can resolve (conversation titles, display names); undefined when unknown. */
export interface Names {
  conversation(id: string): string | undefined;
  user(id: string): string | undefined;
}

function str(data: Record<string, unknown>, key: string): string | undefined {
  const v = data[key];
  return typeof v === "string" && v ? v : undefined;
}

const SECURITY_EVENTS: Record<string, string> = {
  "password.changed": "Your password was changed",
  "2fa.enabled": "Two-factor authentication was turned on",
  "2fa.disabled": "Two-factor authentication was turned off",
  "account.locked": "Your account was locked after too many failed sign-ins",
  "session.new_device": "New sign-in from a device not seen before",
};

/**
 * The line shown for a notification, built from its kind and ids only (the server never puts
 * message content in a notification). Names that are not known yet read generically.
 */
export function notificationText(n: AppNotification, names: Names): string {
  const d = n.data ?? {};
  const convId = str(d, "conversation_id");
  const conv = convId ? names.conversation(convId) : undefined;
  // A direct conversation is named after the other person: "from Alice in Alice" says it twice.
  const named = [d.sender_id, d.caller_id].map((v) => (typeof v === "string" ? names.user(v) : undefined));
  const inConv = conv && !named.includes(conv) ? ` in ${conv}` : "";
  switch (n.kind) {
    case "message": {
      const sender = userName(d, "sender_id", names);
      return sender ? `New message from ${sender}${inConv}` : `New message${inConv}`;
    }
    case "mention": {
      const sender = userName(d, "sender_id", names);
      return `${sender ?? "Someone"} mentioned you${inConv}`;
    }
    case "call.missed": {
      const caller = userName(d, "caller_id", names);
      return `Missed call${caller ? ` from ${caller}` : ""}${inConv}`;
    }
    case "call.scheduled":
      return `Scheduled call${inConv} is starting`;
    case "file.shared": {
      const owner = userName(d, "owner_id", names);
      const perm = str(d, "permission");
      const how = perm === "write" ? " (can edit)" : perm === "read" ? " (read only)" : "";
      return `${owner ?? "Someone"} shared a file with you${how}`;
    }
    case "security": {
      const ev = str(d, "event");
      return `Security: ${(ev && SECURITY_EVENTS[ev]) || "activity on your account"}`;
    }
    default:
      return "New notification";
  }
}

function userName(d: Record<string, unknown>, key: string, names: Names): string | undefined {
  const id = str(d, key);
  return id ? names.user(id) : undefined;
}

/** The user ids a notification names (to look their display names up). */
export function mentionedUsers(n: AppNotification): string[] {
  const d = n.data ?? {};
  return ["sender_id", "caller_id", "owner_id"].map((k) => str(d, k)).filter((x): x is string => !!x);
}

/** Where clicking a notification leads. */
export type Target = { kind: "conversation"; id: string } | { kind: "file"; id: string } | { kind: "settings" } | null;

export function notificationTarget(n: AppNotification): Target {
  const d = n.data ?? {};
  switch (n.kind) {
    case "message":
    case "mention":
    case "call.missed":
    case "call.scheduled": {
      const id = str(d, "conversation_id");
      return id ? { kind: "conversation", id } : null;
    }
    case "file.shared": {
      const id = str(d, "file_id");
      return id ? { kind: "file", id } : null;
    }
    case "security":
      return { kind: "settings" };
    default:
      return null;
  }
}

// --- The unread count -------------------------------------------------------------------------

/** The unread notifications the page knows of; `more`: the server holds more than these. */
export interface Unread {
  ids: ReadonlySet<string>;
  more: boolean;
}

export type UnreadAction =
  /** `alsoUnread`: ids that arrived while the page was loading (the answer may predate them). */
  | { type: "loaded"; items: AppNotification[]; more: boolean; alsoUnread?: string[] }
  | { type: "arrived"; notification: AppNotification }
  | { type: "read"; id: string }
  | { type: "all-read" };

export const NO_UNREAD: Unread = { ids: new Set(), more: false };

export function unreadReducer(state: Unread, a: UnreadAction): Unread {
  switch (a.type) {
    case "loaded":
      return { ids: new Set([...a.items.filter((n) => !n.read_at).map((n) => n.id), ...(a.alsoUnread ?? [])]), more: a.more };
    case "arrived": {
      // The same notification twice (an event and a reload that crossed) counts once.
      if (a.notification.read_at || state.ids.has(a.notification.id)) return state;
      const ids = new Set(state.ids);
      ids.add(a.notification.id);
      return { ids, more: state.more };
    }
    case "read": {
      if (!state.ids.has(a.id)) return state;
      const ids = new Set(state.ids);
      ids.delete(a.id);
      return { ids, more: state.more };
    }
    case "all-read":
      return NO_UNREAD;
  }
}

/**
 * The unread ones about new messages in a conversation (kinds `message` and `mention`): the
 * person reading that conversation has seen what they announce. `about` maps notification id
 * to conversation id.
 */
export function unreadAbout(u: Unread, about: ReadonlyMap<string, string>, conversationId: string): string[] {
  return [...u.ids].filter((id) => about.get(id) === conversationId);
}

/** The conversation a notification announces a message of, if it does. */
export function messageConversation(n: AppNotification): string | undefined {
  if (n.kind !== "message" && n.kind !== "mention") return undefined;
  const v = n.data?.["conversation_id"];
  return typeof v === "string" ? v : undefined;
}

/** The badge: "", "3", or "99+" when there are more than the page counted. */
export function unreadBadge(u: Unread, cap = 99): string {
  const n = u.ids.size;
  if (n === 0 && !u.more) return "";
  if (n > cap || u.more) return `${cap}+`;
  return String(n);
}

// --- Mute -------------------------------------------------------------------------------------

export type MuteDuration = "1h" | "8h" | "1w" | "forever";

export const MUTE_CHOICES: { value: MuteDuration; label: string }[] = [
  { value: "1h", label: "For 1 hour" },
  { value: "8h", label: "For 8 hours" },
  { value: "1w", label: "For 1 week" },
  { value: "forever", label: "Until I unmute" },
];

const HOUR = 3_600_000;
const DURATION_MS: Record<Exclude<MuteDuration, "forever">, number> = { "1h": HOUR, "8h": 8 * HOUR, "1w": 7 * 24 * HOUR };

/** The `until` of `PUT …/mute` for a choice (RFC 3339, UTC); undefined: no end. */
export function muteUntil(d: MuteDuration, now: number): string | undefined {
  if (d === "forever") return undefined;
  return new Date(now + DURATION_MS[d]).toISOString();
}

/** Whether `muted_until` is in force at `now`. */
export function isMuted(mutedUntil: string | null | undefined, now: number): boolean {
  if (!mutedUntil) return false;
  const t = Date.parse(mutedUntil);
  return Number.isFinite(t) && t > now;
}

/** A mute at least this far ahead is shown as "until you unmute" (the server's "forever"). */
const FOREVER_MS = 300 * 24 * HOUR;

/** The muted state in words ("" when not muted). `format` renders a time (locale-dependent). */
export function mutedLabel(
  mutedUntil: string | null | undefined,
  now: number,
  format: (d: Date) => string = (d) => d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }),
): string {
  if (!isMuted(mutedUntil, now)) return "";
  const t = Date.parse(mutedUntil!);
  if (t - now >= FOREVER_MS) return "Muted until you unmute";
  return `Muted until ${format(new Date(t))}`;
}

// --- Web Push ---------------------------------------------------------------------------------

/** base64url (padded or not) → bytes: the VAPID public key as `applicationServerKey`. */
export function base64UrlToBytes(s: string): Uint8Array<ArrayBuffer> {
  const clean = s.trim().replace(/=+$/, "");
  if (!/^[A-Za-z0-9_-]*$/.test(clean) || clean.length % 4 === 1) throw new Error("not base64url");
  const b64 = clean.replace(/-/g, "+").replace(/_/g, "/") + "===".slice(0, (4 - (clean.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** bytes → base64url without padding (how the API takes `p256dh` and `auth`). */
export function bytesToBase64Url(b: ArrayBuffer | Uint8Array): string {
  const bytes = b instanceof Uint8Array ? b : new Uint8Array(b);
  let bin = "";
  for (const x of bytes) bin += String.fromCharCode(x);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The VAPID key as PushManager needs it: a 65-byte uncompressed P-256 point (0x04 first). */
export function vapidKey(publicKey: string): Uint8Array<ArrayBuffer> {
  const k = base64UrlToBytes(publicKey);
  if (k.length !== 65 || k[0] !== 4) throw new Error("the server's push key is not an uncompressed P-256 point");
  return k;
}

/** Whether two keys hold the same bytes (a subscription made with another server key is stale). */
export function sameBytes(a: ArrayBuffer | Uint8Array | null | undefined, b: Uint8Array): boolean {
  if (!a) return false;
  const x = a instanceof Uint8Array ? a : new Uint8Array(a);
  return x.length === b.length && x.every((v, i) => v === b[i]);
}
