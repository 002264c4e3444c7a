// Web Push in the page: the service worker (/sw.js, scope "/"), the browser's PushManager
// subscription made with the server's VAPID key, and its registration with the API (a
// subscription belongs to this session on the server: signing out deletes it there, and this
// module then drops the browser's side too). The worker holds no token: it shows generic
// words, asks an open page for the conversation's name, and opens the app on click
// (docs/web.md "Notifications and push").

import { ApiFailure, api, http } from "./api/client";
import { bytesToBase64Url, sameBytes, vapidKey } from "./notifications";
import type { PageToWorker, WorkerToPage } from "./push-payload";
import { navigate, parseRoute } from "./router";
import { onSessionChange } from "./session";

export const WORKER_URL = "/sw.js";

export function pushSupported(): boolean {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

let registering: Promise<ServiceWorkerRegistration | null> | null = null;

/** Registers the worker once per page (not under `npm run dev`, which has no built /sw.js). */
export function registerWorker(): Promise<ServiceWorkerRegistration | null> {
  if (import.meta.env.DEV || !("serviceWorker" in navigator)) return Promise.resolve(null);
  registering ??= navigator.serviceWorker
    .register(WORKER_URL, { scope: "/", type: "classic", updateViaCache: "none" })
    .then(() => navigator.serviceWorker.ready)
    .catch(() => null);
  return registering;
}

/** The server's id of this browser's subscription, learnt when it was (re)registered. */
let serverId: string | null = null;

async function register(sub: PushSubscription): Promise<string> {
  const p256dh = sub.getKey("p256dh");
  const auth = sub.getKey("auth");
  if (!p256dh || !auth) throw new ApiFailure(0, "PUSH", "The browser gave a push subscription without keys.");
  const view = await api((headers) =>
    http.POST("/v1/push/subscriptions", {
      headers,
      body: {
        kind: "webpush",
        endpoint: sub.endpoint,
        keys: { p256dh: bytesToBase64Url(p256dh), auth: bytesToBase64Url(auth) },
        device_name: "Web browser",
      },
    }),
  );
  serverId = view.id;
  return view.id;
}

export interface PushStatus {
  on: boolean;
  permission: NotificationPermission | "unsupported";
}

/**
 * Whether this browser is subscribed; when it is, registers it again (the same endpoint
 * answers the existing subscription, tied to this session), so the server has it after a
 * reload and the page knows its id.
 */
export async function pushStatus(): Promise<PushStatus> {
  if (!pushSupported()) return { on: false, permission: "unsupported" };
  const permission = Notification.permission;
  const reg = await registerWorker();
  const sub = await reg?.pushManager.getSubscription();
  if (!sub || permission !== "granted") return { on: false, permission };
  await register(sub);
  return { on: true, permission };
}

/**
 * On opening the app: a subscription this browser holds is registered again, so the server
 * has the current endpoint (after the push service replaced it) and it is this session's.
 */
export async function syncPush(): Promise<void> {
  if (!pushSupported() || Notification.permission !== "granted") return;
  await pushStatus().catch(() => undefined);
}

/** Asks permission, subscribes with the server's key and registers the subscription. */
export async function turnOnPush(): Promise<void> {
  if (!pushSupported()) throw new ApiFailure(0, "PUSH", "This browser does not support push notifications.");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    throw new ApiFailure(
      0,
      "PUSH",
      permission === "denied"
        ? "Notifications are blocked for this site. Allow them in the browser's site settings, then try again."
        : "Notifications were not allowed.",
    );
  }
  const reg = await registerWorker();
  if (!reg) throw new ApiFailure(0, "PUSH", "The service worker could not be registered.");
  const key = (await api(() => http.GET("/v1/push/vapid-public-key"))).public_key;
  const applicationServerKey = vapidKey(key);
  let sub = await reg.pushManager.getSubscription();
  // A subscription made with another server key (the key was rotated) cannot receive pushes.
  if (sub && !sameBytes(sub.options.applicationServerKey, applicationServerKey)) {
    await sub.unsubscribe();
    sub = null;
  }
  try {
    sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
  } catch (e) {
    const why = e instanceof Error && e.message ? `: ${e.message}` : "";
    throw new ApiFailure(0, "PUSH", `The browser could not subscribe to its push service${why}.`);
  }
  try {
    await register(sub);
  } catch (e) {
    // The server refused it (e.g. an endpoint it does not allow): leave nothing half-done.
    await sub.unsubscribe().catch(() => undefined);
    throw e;
  }
}

/** Deletes the subscription on the server, then in the browser. */
export async function turnOffPush(): Promise<void> {
  const reg = await registerWorker();
  const sub = await reg?.pushManager.getSubscription();
  if (!sub) return;
  const id = serverId ?? (await register(sub));
  try {
    await api((headers) => http.DELETE("/v1/push/subscriptions/{id}", { headers, params: { path: { id } } }));
  } catch (e) {
    // Already gone on the server (another tab, the session's end): the browser's side goes too.
    if (!(e instanceof ApiFailure && e.status === 404)) throw e;
  }
  serverId = null;
  await sub.unsubscribe();
}

// Signed out (or the session ended): the server deleted this session's subscriptions; drop the
// browser's, so the next person signing in here is not subscribed by what someone else chose.
onSessionChange((s) => {
  if (s || !("serviceWorker" in navigator)) return;
  serverId = null;
  void navigator.serviceWorker.getRegistration("/").then(async (reg) => {
    const sub = await reg?.pushManager.getSubscription();
    await sub?.unsubscribe();
  }).catch(() => undefined);
});

/**
 * Answers the worker: the name of a conversation this page knows (for a push's words), and
 * "open this path" after a click on a notification while the app is open.
 */
export function listenToWorker(nameOf: (conversationId: string) => string | undefined): () => void {
  if (!("serviceWorker" in navigator)) return () => undefined;
  const onMessage = (e: MessageEvent) => {
    const m = e.data as WorkerToPage | undefined;
    if (!m || typeof m !== "object") return;
    if (m.type === "sc:describe" && typeof m.conversation_id === "string") {
      const answer: PageToWorker = { type: "sc:described", name: nameOf(m.conversation_id) ?? null };
      e.ports[0]?.postMessage(answer);
    } else if (m.type === "sc:navigate" && typeof m.url === "string") {
      const u = new URL(m.url, location.origin);
      if (u.origin === location.origin) navigate(parseRoute(u.pathname));
    }
  };
  navigator.serviceWorker.addEventListener("message", onMessage);
  return () => navigator.serviceWorker.removeEventListener("message", onMessage);
}
