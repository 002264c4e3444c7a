// The service worker, served as /sw.js (scope "/"; built un-hashed by vite.config.ts). It only
// shows pushes and opens the app on a click: no fetch handler, no cache, so the page is always
// the server's current one. It holds no token (the access token lives in the page's memory,
// the refresh cookie is HttpOnly and scoped to /v1/auth/browser): the pushes carry ids only, so
// it shows generic words, and the conversation's name when an open page can tell it.

import { type PageToWorker, type WorkerToPage, describePush, parsePushPayload, safeAppPath } from "../src/push-payload";

declare const self: ServiceWorkerGlobalScope;

/** Pushes are delivered at least once: one already shown is not shown again. */
const seen: string[] = [];

self.addEventListener("install", () => {
  void self.skipWaiting();
});

self.addEventListener("activate", (e) => {
  e.waitUntil(self.clients.claim());
});

async function windows(): Promise<readonly WindowClient[]> {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true });
}

/** Asks the open pages what a conversation is called (they hold the list); null if none knows. */
async function nameFromPage(conversationId: string): Promise<string | null> {
  for (const client of await windows()) {
    const name = await new Promise<string | null>((resolve) => {
      const channel = new MessageChannel();
      const timer = setTimeout(() => resolve(null), 1000);
      channel.port1.onmessage = (m: MessageEvent<PageToWorker>) => {
        clearTimeout(timer);
        resolve(m.data?.type === "sc:described" && typeof m.data.name === "string" ? m.data.name : null);
      };
      const ask: WorkerToPage = { type: "sc:describe", conversation_id: conversationId };
      client.postMessage(ask, [channel.port2]);
    });
    if (name) return name;
  }
  return null;
}

async function show(data: PushMessageData | null): Promise<void> {
  let text: string | null = null;
  try {
    text = data?.text() ?? null;
  } catch {
    text = null;
  }
  const payload = parsePushPayload(text);
  // A repeat replaces its notification (same tag) without a second sound or vibration; it is
  // still shown, since a push that shows nothing makes the browser show its own notice.
  const id = payload?.notification_id;
  const repeat = !!id && seen.includes(id);
  if (id && !repeat) {
    seen.push(id);
    if (seen.length > 200) seen.shift();
  }
  const name = payload?.conversation_id ? await nameFromPage(payload.conversation_id) : null;
  const shown = describePush(payload, name ?? undefined);
  await self.registration.showNotification(shown.title, {
    body: shown.body,
    tag: shown.tag,
    icon: "/icon-192.png",
    badge: "/icon-192.png",
    data: { url: shown.url },
    silent: repeat,
    requireInteraction: payload?.type === "call.ringing",
  });
}

self.addEventListener("push", (e) => {
  e.waitUntil(show(e.data));
});

async function open(url: string): Promise<void> {
  const path = safeAppPath(url);
  const all = await windows();
  const client = all.find((c) => c.focused) ?? all[0];
  if (client) {
    // The open app navigates itself (keeping its state and session), then comes to the front.
    const go: WorkerToPage = { type: "sc:navigate", url: path };
    client.postMessage(go);
    await client.focus().catch(() => undefined);
    return;
  }
  await self.clients.openWindow(path);
}

self.addEventListener("notificationclick", (e) => {
  e.notification.close();
  const url = (e.notification.data as { url?: unknown } | null)?.url;
  e.waitUntil(open(typeof url === "string" ? url : "/"));
});

// The push service replaced the subscription (expiry, key rotation on its side): subscribe again
// with the same server key. The worker cannot tell the API (it holds no token); the app
// registers the new endpoint the next time it opens (push.ts syncPush), and the server drops the
// old one at its first 404/410.
self.addEventListener("pushsubscriptionchange", (e) => {
  const key = e.oldSubscription?.options.applicationServerKey;
  if (!key) return;
  e.waitUntil(
    self.registration.pushManager
      .subscribe({ userVisibleOnly: true, applicationServerKey: key })
      .then(() => undefined, () => undefined),
  );
});
