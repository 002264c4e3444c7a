// The page's notification state shared by the bell and the list: the unread set (loaded from
// `GET /v1/notifications?unread=true`, then kept by the realtime `notification` events and the
// read actions) and a cache of the display names notifications refer to by id.

import { useEffect, useState } from "preact/hooks";
import { api, http } from "./api/client";
import {
  type AppNotification,
  NO_UNREAD,
  type Unread,
  type UnreadAction,
  messageConversation,
  unreadAbout,
  unreadReducer,
} from "./notifications";

let unread: Unread = NO_UNREAD;
const unreadListeners = new Set<(u: Unread) => void>();

/** While a reload is in flight: what arrived (or was read) meanwhile, which its answer may miss. */
let arrivedDuringLoad: Set<string> | null = null;

/** Notification id → the conversation whose message it announces. */
const about = new Map<string, string>();

function remember(n: AppNotification): void {
  const c = messageConversation(n);
  if (c) about.set(n.id, c);
}

export function dispatchUnread(a: UnreadAction): void {
  if (a.type === "arrived") remember(a.notification);
  else if (a.type === "loaded") a.items.forEach(remember);
  if (arrivedDuringLoad) {
    if (a.type === "arrived" && !a.notification.read_at) arrivedDuringLoad.add(a.notification.id);
    else if (a.type === "read") arrivedDuringLoad.delete(a.id);
    else if (a.type === "all-read") arrivedDuringLoad.clear();
  }
  const next = unreadReducer(unread, a);
  if (next === unread) return;
  unread = next;
  for (const l of unreadListeners) l(unread);
}

export function useUnread(): Unread {
  const [u, setU] = useState(unread);
  useEffect(() => {
    unreadListeners.add(setU);
    setU(unread);
    return () => void unreadListeners.delete(setU);
  }, []);
  return u;
}

/** The first 100 unread ones (the badge says "99+" beyond). */
export async function reloadUnread(): Promise<void> {
  const during = new Set<string>();
  arrivedDuringLoad = during;
  try {
    const page = await api((headers) =>
      http.GET("/v1/notifications", { headers, params: { query: { unread: true, limit: 100 } } }),
    );
    dispatchUnread({ type: "loaded", items: page.items as AppNotification[], more: !!page.next_cursor, alsoUnread: [...during] });
  } finally {
    if (arrivedDuringLoad === during) arrivedDuringLoad = null;
  }
}

export async function markRead(id: string): Promise<AppNotification> {
  const n = await api((headers) => http.POST("/v1/notifications/{id}/read", { headers, params: { path: { id } } }));
  dispatchUnread({ type: "read", id });
  return n as AppNotification;
}

const reading = new Set<string>();

/**
 * The conversation is open and visible: its message and mention notifications are read (at
 * most 20 requests at a time; the rest on the next pass).
 */
export async function readConversation(conversationId: string): Promise<void> {
  const ids = unreadAbout(unread, about, conversationId).filter((id) => !reading.has(id)).slice(0, 20);
  await Promise.all(
    ids.map(async (id) => {
      reading.add(id);
      try {
        await markRead(id);
      } catch {
        // Still unread: the list shows it, the next visit tries again.
      } finally {
        reading.delete(id);
      }
    }),
  );
}

export async function markAllRead(): Promise<void> {
  await api((headers) => http.POST("/v1/notifications/read-all", { headers }));
  dispatchUnread({ type: "all-read" });
}

// Display names by user id: looked up once each (a failed lookup reads "Someone").
const names = new Map<string, string>();
const asked = new Set<string>();
const nameListeners = new Set<() => void>();

export function userName(id: string): string | undefined {
  return names.get(id);
}

export function lookUpUsers(ids: string[]): void {
  for (const id of ids) {
    if (asked.has(id)) continue;
    asked.add(id);
    void api((headers) => http.GET("/v1/users/{id}", { headers, params: { path: { id } } }))
      .then((p) => {
        names.set(id, p.display_name);
        for (const l of nameListeners) l();
      })
      .catch(() => undefined);
  }
}

/** Re-renders when a looked-up name arrives. */
export function useNames(): number {
  const [n, setN] = useState(0);
  useEffect(() => {
    const l = () => setN((x) => x + 1);
    nameListeners.add(l);
    return () => void nameListeners.delete(l);
  }, []);
  return n;
}

/** Forget everything (signed out): the next account starts clean. */
export function resetNotifications(): void {
  unread = NO_UNREAD;
  about.clear();
  names.clear();
  asked.clear();
  for (const l of unreadListeners) l(unread);
}
