// Notifications in a real browser against the real server: Bob's badge and list follow the
// realtime `notification` events as Alice mentions him and writes while he is away; "Mark all
// as read" clears them on the server; preferences and a conversation's mute persist across a
// reload; the service worker registers at "/", push is turned on and off (the subscription
// appears on the server and receives a real Web Push), a push delivered to the worker shows a
// content-free notification named by the open page; the manifest is served and parses; and
// these screens have no accessibility finding, console error or CSP violation.

import { createECDH, randomBytes, randomUUID } from "node:crypto";
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import { accessibilityProblems, apiCall, apiUser, useSuite, watchedContext, signIn } from "./harness";

const suite = useSuite("notifications", { env: { SC_PUSH_ALLOW_INSECURE_ENDPOINTS: "true" } });
let context: BrowserContext;
let bob: Page;
const problems: string[] = [];

/** A stand-in push service on loopback: records what the server POSTs to it. */
const received: { headers: IncomingHttpHeaders; bytes: number; path: string }[] = [];
const pushService = createServer((req, res) => {
  let bytes = 0;
  req.on("data", (c: Buffer) => (bytes += c.length));
  req.on("end", () => {
    received.push({ headers: req.headers, bytes, path: req.url ?? "" });
    res.writeHead(201).end();
  });
});

let alice: { token: string; id: string };
let bobApi: { token: string; id: string };
let conversationId = "";

beforeAll(async () => {
  // The stand-in push service is on loopback, which only this switch allows (tests only).
  await new Promise<void>((ok) => pushService.listen(0, "127.0.0.1", ok));
});

afterAll(async () => {
  pushService.close();
});

async function aliceSays(content: string): Promise<void> {
  const r = await apiCall(suite.server.base, alice.token, "POST", `/v1/conversations/${conversationId}/messages`, {
    client_message_id: randomUUID(),
    content,
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

async function unreadOnServer(token: string): Promise<number> {
  const r = await apiCall(suite.server.base, token, "GET", "/v1/notifications?unread=true&limit=100");
  return (r.body.data["items"] as unknown[]).length;
}

function bell(page: Page) {
  return page.locator("header.topbar").getByRole("link", { name: /^Notifications/ });
}

async function badge(page: Page): Promise<string> {
  return ((await bell(page).textContent()) ?? "").replace(/\s+/g, " ").trim();
}

async function expectClean(page: Page, what: string) {
  expect(await accessibilityProblems(page), what).toEqual([]);
}

describe("notifications", () => {
  it("counts and lists notifications live, and marks them read", async () => {
    alice = await apiUser(suite.server.base, "alice", "Alice Liddell");
    bobApi = await apiUser(suite.server.base, "bob", "Bob Builder");
    const conv = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", {
      kind: "group",
      title: "Garden party",
      member_ids: [bobApi.id],
    });
    expect(conv.status).toBe(201);
    conversationId = conv.body.data["id"] as string;

    context = await watchedContext(suite, problems);
    await context.grantPermissions(["notifications"], { origin: suite.server.base });
    bob = await context.newPage();
    await signIn(bob, "bob");
    await bob.getByRole("status").filter({ hasText: "Online" }).waitFor();

    // Signing in from a new browser is itself a security notice; start from nothing unread.
    await expect.poll(() => unreadOnServer(bobApi.token), { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
    await apiCall(suite.server.base, bobApi.token, "POST", "/v1/notifications/read-all");
    await bob.reload();
    await bob.getByRole("status").filter({ hasText: "Online" }).waitFor();
    await expect.poll(() => badge(bob)).toBe("Notifications");

    // A mention reaches Bob while he is online: the badge counts it without a reload.
    await aliceSays("Are you coming, @bob?");
    await expect.poll(() => badge(bob), { timeout: 15_000 }).toBe("Notifications 1 unread");

    // Bob opens the list; while he is "away" (presence offline) Alice writes again: a plain
    // message now notifies him too, and the open list and badge take it in live.
    await bell(bob).click();
    await bob.waitForURL(/\/notifications$/);
    const list = bob.getByRole("list", { name: "Notifications" });
    await list.getByRole("link", { name: "Unread: Alice Liddell mentioned you in Garden party" }).waitFor();
    await expectClean(bob, "notifications list");
    await bob.setViewportSize({ width: 390, height: 800 });
    await bob.emulateMedia({ colorScheme: "dark" });
    await expectClean(bob, "notifications list, phone, dark");
    // Nothing wider than the phone's screen.
    expect(await bob.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await bob.setViewportSize({ width: 1280, height: 800 });
    await bob.emulateMedia({ colorScheme: "light" });
    expect((await apiCall(suite.server.base, bobApi.token, "POST", "/v1/presence", { status: "offline" })).status).toBe(200);
    await aliceSays("Cake is ready");
    await list.getByRole("link", { name: "Unread: New message from Alice Liddell in Garden party" }).waitFor({ timeout: 15_000 });
    await expect.poll(() => badge(bob)).toBe("Notifications 2 unread");
    // No message text in what the list shows.
    expect(await list.textContent()).not.toContain("Cake");

    // The unread filter, then "Mark all as read": the count goes, on the server too.
    await bob.getByLabel("Unread only").check();
    await expect.poll(() => list.getByRole("link").count()).toBe(2);
    await bob.getByRole("button", { name: "Mark all as read" }).click();
    await expect.poll(() => badge(bob)).toBe("Notifications");
    expect(await unreadOnServer(bobApi.token)).toBe(0);
    await bob.getByText("No unread notifications.").waitFor();
    await bob.getByLabel("Unread only").uncheck();
    await list.getByRole("link", { name: "Alice Liddell mentioned you in Garden party" }).waitFor();
    expect(await list.getByRole("link", { name: /^Unread:/ }).count()).toBe(0);

    // A click opens the conversation it is about.
    await list.getByRole("link", { name: "Alice Liddell mentioned you in Garden party" }).click();
    await bob.waitForURL(new RegExp(`/c/${conversationId}$`));
    await bob.getByRole("list", { name: "Messages" }).getByText("Are you coming, @bob?").waitFor();
    await apiCall(suite.server.base, bobApi.token, "POST", "/v1/presence", { status: "online" });
  });

  it("keeps preferences and a mute across a reload", async () => {
    await bob.getByRole("link", { name: "Settings" }).click();
    const section = bob.getByRole("region", { name: "Notifications" });
    const mentionPush = section.getByRole("checkbox", { name: "Mentions: push" });
    await mentionPush.waitFor();
    // The server's defaults: everything on; security is not a switch.
    for (const name of ["New messages: push", "New messages: email", "Mentions: email", "Email digest of unread messages and mentions"]) {
      expect(await section.getByRole("checkbox", { name }).isChecked(), name).toBe(true);
    }
    await section.getByText("Always on (push and email)").waitFor();
    await mentionPush.uncheck();
    await section.getByRole("status").filter({ hasText: "Saved: Mentions, push off." }).waitFor({ state: "attached" });
    await section.getByRole("checkbox", { name: "Email digest of unread messages and mentions" }).uncheck();
    await section.getByRole("status").filter({ hasText: "Saved: email digest off." }).waitFor({ state: "attached" });
    const prefs = (await apiCall(suite.server.base, bobApi.token, "GET", "/v1/notifications/preferences")).body.data as {
      kinds: Record<string, { push: boolean; email: boolean }>;
      email_digest: boolean;
    };
    expect(prefs.kinds["mention"]).toEqual({ push: false, email: true });
    expect(prefs.email_digest).toBe(false);
    await expectClean(bob, "settings");
    await bob.reload();
    await mentionPush.waitFor();
    expect(await mentionPush.isChecked()).toBe(false);
    expect(await section.getByRole("checkbox", { name: "Mentions: email" }).isChecked()).toBe(true);
    expect(await section.getByRole("checkbox", { name: "Email digest of unread messages and mentions" }).isChecked()).toBe(false);

    // Mute the conversation for 8 hours from its header.
    await bob.goto(`/c/${conversationId}`);
    const header = bob.locator(".conversation-header");
    await header.getByText("Mute", { exact: true }).click();
    await expectClean(bob, "mute menu");
    // Keyboard: Escape closes the menu, Enter on the summary opens it again.
    await header.getByRole("button", { name: "For 1 hour" }).focus();
    await bob.keyboard.press("Escape");
    await expect.poll(() => header.getByRole("button", { name: "For 1 hour" }).isVisible()).toBe(false);
    await bob.keyboard.press("Enter");
    await header.getByRole("button", { name: "For 8 hours" }).click();
    await header.getByRole("status").filter({ hasText: /^Muted until / }).waitFor();
    const muted = (await apiCall(suite.server.base, bobApi.token, "GET", `/v1/conversations/${conversationId}`)).body.data;
    const until = Date.parse(muted["muted_until"] as string);
    expect(Math.abs(until - (Date.now() + 8 * 3600_000))).toBeLessThan(60_000);
    await bob.reload();
    await header.getByText("Muted", { exact: true }).waitFor();
    await header.getByRole("status").filter({ hasText: /^Muted until / }).waitFor();
    // Until I unmute, then unmute.
    await header.getByText("Muted", { exact: true }).click();
    await header.getByRole("button", { name: "Unmute" }).click();
    await header.getByText("Mute", { exact: true }).waitFor();
    await header.getByText("Mute", { exact: true }).click();
    await header.getByRole("button", { name: "Until I unmute" }).click();
    await header.getByRole("status").filter({ hasText: "Muted until you unmute" }).waitFor();
    const forever = (await apiCall(suite.server.base, bobApi.token, "GET", `/v1/conversations/${conversationId}`)).body.data;
    expect(Date.parse(forever["muted_until"] as string)).toBeGreaterThan(Date.now() + 360 * 24 * 3600_000);
    await header.getByText("Muted", { exact: true }).click();
    await header.getByRole("button", { name: "Unmute" }).click();
    await header.getByText("Mute", { exact: true }).waitFor();
    expect((await apiCall(suite.server.base, bobApi.token, "GET", `/v1/conversations/${conversationId}`)).body.data["muted_until"] ?? null).toBeNull();
  });

  it("registers the service worker at / and turns push on and off", async () => {
    const scope = await bob.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    expect(scope).toBe(`${suite.server.base}/`);
    const sw = await fetch(`${suite.server.base}/sw.js`);
    expect(sw.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(sw.headers.get("cache-control")).toBe("no-cache");
    expect(await sw.text()).not.toMatch(/^\s*(import|export)\b/m);

    // Try the browser's own push service first.
    await bob.getByRole("link", { name: "Settings" }).click();
    const section = bob.getByRole("region", { name: "Notifications" });
    await section.getByRole("button", { name: "Turn on push notifications" }).click();
    const outcome = await Promise.race([
      section.getByRole("status").filter({ hasText: "Push notifications are on for this browser." }).waitFor().then(() => "on"),
      section.getByRole("alert").waitFor().then(async () => (await section.getByRole("alert").textContent()) ?? ""),
    ]);
    let fake = false;
    if (outcome !== "on") {
      // Headless Chromium has no push service to subscribe with (no network here either).
      // What the app does with a subscription is still real: stand in for PushManager with a
      // subscription whose endpoint is the loopback push service, and real P-256/auth keys.
      console.log(`the browser's own push service refused: ${outcome}`);
      expect(outcome).toContain("could not subscribe to its push service");
      fake = true;
      const ecdh = createECDH("prime256v1");
      ecdh.generateKeys();
      await context.addInitScript(
        ({ endpoint, p256dh, auth }) => {
          const KEY = "test-fake-push-subscription";
          const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer;
          const make = (serverKey: ArrayBuffer | null) => ({
            endpoint,
            expirationTime: null,
            options: { userVisibleOnly: true, applicationServerKey: serverKey },
            getKey: (n: string) => (n === "p256dh" ? b64(p256dh) : n === "auth" ? b64(auth) : null),
            unsubscribe: async () => {
              sessionStorage.removeItem(KEY);
              return true;
            },
          });
          PushManager.prototype.subscribe = async function (o?: PushSubscriptionOptionsInit) {
            const k = o?.applicationServerKey as Uint8Array;
            sessionStorage.setItem(KEY, btoa(String.fromCharCode(...k)));
            return make(k.buffer as ArrayBuffer) as unknown as PushSubscription;
          };
          PushManager.prototype.getSubscription = async function () {
            const k = sessionStorage.getItem(KEY);
            return k ? (make(b64(k)) as unknown as PushSubscription) : null;
          };
        },
        {
          endpoint: `http://127.0.0.1:${(pushService.address() as AddressInfo).port}/push/bob`,
          p256dh: ecdh.getPublicKey().toString("base64"),
          auth: randomBytes(16).toString("base64"),
        },
      );
      await bob.reload();
      await section.getByRole("button", { name: "Turn on push notifications" }).click();
      await section.getByRole("status").filter({ hasText: "Push notifications are on for this browser." }).waitFor();
    }

    // The subscription is on the server, tied to this session, and survives a reload.
    const subs = async () =>
      (await apiCall(suite.server.base, bobApi.token, "GET", "/v1/push/subscriptions")).body.data["items"] as { kind: string; device_name: string }[];
    expect(await subs()).toEqual([expect.objectContaining({ kind: "webpush", device_name: "Web browser" })]);
    await bob.reload();
    await section.getByRole("button", { name: "Turn off push notifications" }).waitFor();
    expect((await subs()).length).toBe(1);
    await expectClean(bob, "settings with push on");

    if (fake) {
      // Bob is away: Alice's message is pushed to the subscription, encrypted and signed.
      await apiCall(suite.server.base, bobApi.token, "POST", "/v1/presence", { status: "offline" });
      await aliceSays("Pushed?");
      await expect.poll(() => received.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
      await expect.poll(() => badge(bob)).toBe("Notifications 1 unread");
      const push = received[0]!;
      expect(push.path).toBe("/push/bob");
      expect(push.headers["content-encoding"]).toBe("aes128gcm");
      expect(push.headers["authorization"]).toMatch(/^vapid t=.+, k=.+/);
      expect(push.bytes).toBeGreaterThan(0);
      await apiCall(suite.server.base, bobApi.token, "POST", "/v1/presence", { status: "online" });
    }

    // The worker shows a delivered push (what the push service hands the browser): generic
    // words, named by the open page, which knows the conversation's title.
    const cdp = await context.newCDPSession(bob);
    const registrations: { registrationId: string; scopeURL: string }[] = [];
    cdp.on("ServiceWorker.workerRegistrationUpdated", (e: { registrations: { registrationId: string; scopeURL: string }[] }) =>
      registrations.push(...e.registrations),
    );
    await cdp.send("ServiceWorker.enable");
    await expect.poll(() => registrations.find((r) => r.scopeURL === `${suite.server.base}/`)).toBeTruthy();
    const registrationId = registrations.find((r) => r.scopeURL === `${suite.server.base}/`)!.registrationId;
    await cdp.send("ServiceWorker.deliverPushMessage", {
      origin: suite.server.base,
      registrationId,
      data: JSON.stringify({ type: "message", conversation_id: conversationId, notification_id: "0190f0e0-0000-7000-8000-000000000001" }),
    });
    const shown = () =>
      bob.evaluate(async () =>
        (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag })),
      );
    await expect.poll(shown, { timeout: 10_000 }).toEqual([
      { title: "New message in Garden party", body: "Open SecureConnect to read it.", tag: `conversation:${conversationId}` },
    ]);
    await cdp.detach();

    // A click on it brings the open app to that conversation (the worker's own click handler,
    // run on the shown notification: the browser's notification UI is not reachable here).
    await bob.goto("/notifications");
    await bob.getByRole("heading", { name: "Notifications" }).waitFor();
    const worker = context.serviceWorkers().find((w) => w.url() === `${suite.server.base}/sw.js`);
    expect(worker, "the service worker").toBeTruthy();
    await worker!.evaluate(async () => {
      type Click = new (type: string, init: { notification: Notification }) => Event;
      const scope = self as unknown as { registration: ServiceWorkerRegistration; NotificationEvent: Click } & EventTarget;
      const [n] = await scope.registration.getNotifications();
      try {
        scope.dispatchEvent(new scope.NotificationEvent("notificationclick", { notification: n! }));
      } catch {
        // waitUntil refuses an event the page made; the handler has started its work already.
      }
    });
    await bob.waitForURL(new RegExp(`/c/${conversationId}$`));
    await bob.getByRole("list", { name: "Messages" }).waitFor();
    expect(await shown()).toEqual([]);
    // Reading the conversation reads what announced its messages ("Pushed?" while away).
    if (fake) {
      await expect.poll(() => unreadOnServer(bobApi.token)).toBe(0);
      await expect.poll(() => badge(bob)).toBe("Notifications");
    }
    await bob.goto("/settings");

    // Off: gone on the server and in the browser.
    await section.getByRole("button", { name: "Turn off push notifications" }).click();
    await section.getByRole("status").filter({ hasText: "Push notifications are off for this browser." }).waitFor();
    expect(await subs()).toEqual([]);
    expect(await bob.evaluate(async () => (await (await navigator.serviceWorker.ready).pushManager.getSubscription()) === null)).toBe(true);
  });

  it("serves an installable manifest", async () => {
    const r = await fetch(`${suite.server.base}/manifest.webmanifest`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/manifest+json");
    const m = (await r.json()) as { name: string; start_url: string; display: string; icons: { src: string; sizes: string; purpose: string }[] };
    expect(m).toMatchObject({ name: "SecureConnect", start_url: "/", display: "standalone" });
    for (const size of ["192x192", "512x512"]) expect(m.icons.some((i) => i.sizes === size)).toBe(true);
    expect(m.icons.some((i) => i.purpose === "maskable")).toBe(true);
    for (const icon of m.icons) {
      const got = await fetch(`${suite.server.base}${icon.src}`);
      expect(got.status, icon.src).toBe(200);
      const bytes = Buffer.from(await got.arrayBuffer());
      if (icon.src.endsWith(".png")) {
        expect(bytes.subarray(1, 4).toString()).toBe("PNG");
        expect(`${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`).toBe(icon.sizes);
      }
    }
    // The page links it (and the browser parsed it: the manifest's id is the app's).
    expect(await bob.locator('link[rel="manifest"]').getAttribute("href")).toBe("/manifest.webmanifest");
    const cdp = await context.newCDPSession(bob);
    const manifest = (await cdp.send("Page.getAppManifest")) as { url: string; errors: unknown[]; data?: string };
    expect(manifest.url).toBe(`${suite.server.base}/manifest.webmanifest`);
    expect(manifest.errors).toEqual([]);
    expect(JSON.parse(manifest.data ?? "{}").short_name).toBe("SecureConnect");
    await cdp.detach();
  });

  it("logged no console error and no CSP violation", () => {
    // Chromium's own notice when the page asks a push service of an incognito-like test
    // context (every Playwright context is one); the app logs nothing for it.
    const chromiums = /Chrome currently does not support the Push API in incognito mode/;
    expect(problems.filter((p) => !chromiums.test(p))).toEqual([]);
  });
});
