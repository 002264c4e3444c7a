// What the service worker shows for a push (API.md §12 "Push"): the payload is content-free by
// default, `{type, notification_id?, conversation_id?, call_id?, title?, body?}`. Shared by the
// worker (sw/sw.ts) and the page (which answers the worker's "what is this conversation
// called?"), so it imports nothing and uses nothing of the DOM or of the worker scope.

export interface PushPayload {
  type: string;
  notification_id?: string;
  conversation_id?: string;
  call_id?: string;
  title?: string;
  body?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function opt(o: Record<string, unknown>, k: string, id = false): string | undefined {
  const v = o[k];
  if (typeof v !== "string" || !v) return undefined;
  if (id && !UUID.test(v)) return undefined;
  return v.slice(0, 500);
}

/** The payload as JSON text, or null when it is not one (an empty push is a plain wake-up). */
export function parsePushPayload(text: string | null | undefined): PushPayload | null {
  if (!text) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!v || typeof v !== "object") return null;
  const o = v as Record<string, unknown>;
  const type = opt(o, "type");
  if (!type) return null;
  return {
    type,
    notification_id: opt(o, "notification_id", true),
    conversation_id: opt(o, "conversation_id", true),
    call_id: opt(o, "call_id", true),
    title: opt(o, "title"),
    body: opt(o, "body"),
  };
}

export interface Shown {
  title: string;
  body: string;
  /** Same tag: a later push about the same thing replaces the earlier one instead of piling up. */
  tag: string;
  /** The app path a click opens. */
  url: string;
}

/**
 * What to show. `conversationName` is the title an open page resolved (undefined: none open,
 * or it did not know). Server-sent `title`/`body` (only when the operator turned content on,
 * and only for plain conversations) win over the generic words.
 */
export function describePush(p: PushPayload | null, conversationName?: string): Shown {
  const app = "SecureConnect";
  if (!p) return { title: app, body: "You have new activity.", tag: "activity", url: "/notifications" };
  const where = conversationName ? ` in ${conversationName}` : ` in ${app}`;
  const url = p.conversation_id ? `/c/${p.conversation_id}` : "/notifications";
  const tag = p.conversation_id ? `conversation:${p.conversation_id}` : p.call_id ? `call:${p.call_id}` : p.type;
  let title: string;
  switch (p.type) {
    case "message":
      title = `New message${where}`;
      break;
    case "mention":
      title = `You were mentioned${where}`;
      break;
    case "call.ringing":
      title = `Incoming call${where}`;
      break;
    case "call.missed":
      title = `Missed call${where}`;
      break;
    case "call.scheduled":
      title = `Scheduled call starting${where}`;
      break;
    case "file.shared":
      title = `A file was shared with you in ${app}`;
      break;
    case "security":
      title = `Security alert from ${app}`;
      break;
    default:
      title = `New activity in ${app}`;
  }
  const callTag = p.type === "call.ringing" && p.call_id ? `call:${p.call_id}` : tag;
  return {
    title: p.title ? p.title : title,
    body: p.body ?? (p.type === "security" ? "Open the app to review it." : "Open SecureConnect to read it."),
    tag: callTag,
    url,
  };
}

/** Messages between the worker and its pages (postMessage). */
export type WorkerToPage = { type: "sc:describe"; conversation_id: string } | { type: "sc:navigate"; url: string };
export type PageToWorker = { type: "sc:described"; name: string | null };

/** Only same-app paths are opened on click (never another origin). */
export function safeAppPath(url: string): string {
  return /^\/(c\/[0-9a-f-]{36}|notifications)?$/i.test(url) ? url : "/";
}
