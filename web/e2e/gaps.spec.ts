// The features the web app added to cover the whole API: blocking (Settings and a direct
// conversation), the avatar link, group administration (rename, add, roles, ownership,
// retention, remove, delete), scheduled calls (create, move, cancel), "Seen by" receipts and
// deleting one's account. Each effect is checked through the API as another client sees it,
// with an axe scan and no console error or CSP violation on the screens.

import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import {
  PASSWORD,
  accessibilityProblems,
  apiCall,
  apiUser,
  useSuite,
  apiLogin,
  watchedContext,
  submitSignIn,
} from "./harness";

const suite = useSuite("gaps", { env: { SC_PUSH_ALLOW_INSECURE_ENDPOINTS: "true" } });
const problems: string[] = [];
const contexts: BrowserContext[] = [];
type U = { token: string; id: string };
let alice: U, bob: U, carol: U;

beforeAll(async () => {
  alice = await apiUser(suite.server.base, "alice", "Alice Example");
  bob = await apiUser(suite.server.base, "bob", "Bob Example");
  carol = await apiUser(suite.server.base, "carol", "Carol Example");
});

/** A fresh API token each test: the many browser sign-ins evict the oldest sessions (the cap per user). */
const login = (username: string) => apiLogin(suite.server.base, username);

beforeEach(async () => {
  alice.token = await login("alice");
  bob.token = await login("bob");
  carol.token = await login("carol");
  // Contexts of earlier tests are done.
  for (const c of contexts.splice(0)) await c.close();
});

async function signedIn(username: string, list: string[] = problems): Promise<Page> {
  const context = await watchedContext(suite, list);
  contexts.push(context);
  const page = await context.newPage();
  // confirm() dialogs of the app are accepted.
  page.on("dialog", (d) => void d.accept());
  await page.goto("/");
  await submitSignIn(page, username);
  await page.getByRole("list", { name: "Conversations" }).waitFor({ state: "attached" });
  return page;
}

async function noAxe(page: Page, where: string) {
  expect(await accessibilityProblems(page), where).toEqual([]);
}

const get = (u: U, path: string) => apiCall(suite.server.base, u.token, "GET", path);

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  let v = await probe();
  for (let i = 0; i < 50 && !ok(v); i++) {
    await new Promise((r) => setTimeout(r, 100));
    v = await probe();
  }
  if (!ok(v)) throw new Error(`${what}: ${JSON.stringify(v)}`);
  return v;
}

type Items<T> = { items: T[] };

describe("account extras", () => {
  it("blocks and unblocks by username in Settings, saves an avatar link, and the API agrees", async () => {
    const page = await signedIn("alice");
    await page.goto("/settings");
    await page.getByRole("heading", { name: "Blocked people" }).waitFor();
    await page.getByLabel("Username to block").fill("@bob");
    await page.getByRole("button", { name: "Block", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Blocked @bob." }).waitFor();
    await page.getByRole("list", { name: "Blocked people" }).getByText("Bob Example").waitFor();
    const blocked = (await get(alice, "/v1/users/me/blocked")).body.data as unknown as Items<{ id: string }>;
    expect(blocked.items.map((p) => p.id)).toEqual([bob.id]);
    // Bob can no longer open a direct conversation with Alice.
    const refused = await apiCall(suite.server.base, bob.token, "POST", "/v1/conversations", { kind: "direct", member_ids: [alice.id] });
    expect(refused.status).toBe(403);
    await noAxe(page, "settings with a blocked person");

    await page.getByRole("button", { name: "Unblock @bob" }).click();
    await page.getByRole("status").filter({ hasText: "Unblocked @bob." }).waitFor();
    await until(() => get(alice, "/v1/users/me/blocked"), (r) => (r.body.data as unknown as Items<unknown>).items.length === 0, "unblocked");

    // An http (not https) avatar is refused in the page; an https one is saved, shown as a link.
    await page.getByLabel("Avatar link").fill("http://example.org/me.png");
    await page.getByRole("button", { name: "Save avatar" }).click();
    await page.getByRole("alert").filter({ hasText: "https://" }).waitFor();
    await page.getByLabel("Avatar link").fill("https://example.org/me.png");
    await page.getByRole("button", { name: "Save avatar" }).click();
    await page.getByRole("status").filter({ hasText: "Avatar saved." }).waitFor();
    await page.getByRole("link", { name: "https://example.org/me.png" }).waitFor();
    expect((await get(alice, "/v1/users/me")).body.data.avatar_url).toBe("https://example.org/me.png");
    await noAxe(page, "settings");
  });

  it("blocks the other person from a direct conversation", async () => {
    const c = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", { kind: "direct", member_ids: [carol.id] });
    const id = c.body.data.id as string;
    const page = await signedIn("alice");
    await page.goto(`/c/${id}`);
    await page.getByRole("button", { name: "Block @carol", exact: true }).click();
    await page.getByRole("button", { name: "Unblock @carol" }).waitFor();
    const send = await apiCall(suite.server.base, carol.token, "POST", `/v1/conversations/${id}/messages`, {
      client_message_id: "blocked-1",
      content: "hello?",
    });
    expect(send.status).toBe(403);
    await noAxe(page, "direct conversation");
    await page.getByRole("button", { name: "Unblock @carol" }).click();
    await page.getByRole("button", { name: "Block @carol", exact: true }).waitFor();
    const again = await apiCall(suite.server.base, carol.token, "POST", `/v1/conversations/${id}/messages`, {
      client_message_id: "blocked-2",
      content: "hello!",
    });
    expect(again.status).toBe(201);
  });
});

describe("group administration", () => {
  it("renames, adds, changes roles, sets retention, removes, hands over ownership and deletes", async () => {
    const c = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", { kind: "group", member_ids: [bob.id], title: "Planning" });
    const id = c.body.data.id as string;
    const page = await signedIn("alice");
    await page.goto(`/c/${id}`);
    await page.getByText("Manage group").click();
    await noAxe(page, "manage group");

    await page.getByLabel("Group name").fill("Launch planning");
    await page.getByRole("button", { name: "Save group details" }).click();
    await page.getByRole("status").filter({ hasText: "Group details saved." }).waitFor();
    expect((await get(bob, `/v1/conversations/${id}`)).body.data.title).toBe("Launch planning");

    await page.getByLabel("Add people (usernames)").fill("carol");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByRole("list", { name: "Group members" }).getByText("Carol Example").waitFor();
    expect((await get(carol, `/v1/conversations/${id}`)).status).toBe(200);

    await page.getByLabel("Role of @carol").selectOption("admin");
    await page.getByRole("status").filter({ hasText: "@carol is now an admin." }).waitFor();
    const roleOf = async (u: string) =>
      ((await get(alice, `/v1/conversations/${id}/members`)).body.data as unknown as Items<{ user_id: string; role: string }>).items.find(
        (m) => m.user_id === u,
      )?.role;
    expect(await roleOf(carol.id)).toBe("admin");

    await page.getByLabel("Delete messages after (days)").fill("abc");
    await page.getByRole("button", { name: "Save retention" }).click();
    await page.getByRole("alert").filter({ hasText: "whole number" }).waitFor();
    await page.getByLabel("Delete messages after (days)").fill("30");
    await page.getByRole("button", { name: "Save retention" }).click();
    await page.getByRole("status").filter({ hasText: "30 days" }).waitFor();
    expect((await get(bob, `/v1/conversations/${id}`)).body.data.retention_days).toBe(30);

    await page.getByRole("button", { name: "Remove @carol" }).click();
    await page.getByRole("status").filter({ hasText: "Removed @carol." }).waitFor();
    expect((await get(carol, `/v1/conversations/${id}`)).status).toBe(404);

    await page.getByLabel("Role of @bob").selectOption("owner");
    await page.getByRole("status").filter({ hasText: "Bob Example now owns the group." }).waitFor();
    expect(await roleOf(bob.id)).toBe("owner");
    expect(await roleOf(alice.id)).not.toBe("owner");
    // Alice is no longer the owner: no role choices, no "Delete group".
    await page.getByLabel("Role of @bob").waitFor({ state: "detached" });
    expect(await page.getByRole("button", { name: "Delete group" }).count()).toBe(0);

    // A group of her own is deleted for everyone.
    const d = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", { kind: "group", member_ids: [bob.id], title: "Doomed" });
    const doomed = d.body.data.id as string;
    await page.goto(`/c/${doomed}`);
    await page.getByText("Manage group").click();
    await page.getByRole("button", { name: "Delete group" }).click();
    await until(() => get(bob, `/v1/conversations/${doomed}`), (r) => r.status === 404, "deleted");
  });

  it("shows a member the group details without the management controls", async () => {
    const c = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", { kind: "group", member_ids: [bob.id], title: "Readers" });
    const page = await signedIn("bob");
    await page.goto(`/c/${c.body.data.id as string}`);
    await page.getByText("Group details").click();
    await page.getByRole("list", { name: "Group members" }).getByText("Alice Example").waitFor();
    expect(await page.getByLabel("Group name").count()).toBe(0);
    expect(await page.getByRole("button", { name: /Remove/ }).count()).toBe(0);
  });
});

describe("encrypted groups", () => {
  it("leaves membership changes of an encrypted group to a client that supports encryption", async () => {
    const c = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", {
      kind: "group",
      member_ids: [bob.id],
      title: "Secret",
      encrypted: true,
    });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const page = await signedIn("alice");
    await page.goto(`/c/${c.body.data.id as string}`);
    // The conversation itself is marked.
    await page.getByText("This conversation is end-to-end encrypted.").waitFor();
    await page.getByText("Manage group").click();
    await page.getByText("open it in a client that supports encryption").waitFor();
    expect(await page.getByLabel("Add people (usernames)").count()).toBe(0);
    expect(await page.getByRole("button", { name: "Remove @bob" }).count()).toBe(0);
    // Renaming stays possible: it is no message content.
    await page.getByLabel("Group name").fill("Secret plans");
    await page.getByRole("button", { name: "Save group details" }).click();
    await page.getByRole("status").filter({ hasText: "Group details saved." }).waitFor();
    expect((await get(bob, `/v1/conversations/${c.body.data.id as string}`)).body.data.title).toBe("Secret plans");
  });
});

describe("scheduled calls and receipts", () => {
  it("schedules, moves and cancels a call that the other member sees", async () => {
    const c = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", { kind: "group", member_ids: [bob.id], title: "Standup" });
    const id = c.body.data.id as string;
    const page = await signedIn("alice");
    await page.goto(`/c/${id}`);
    await page.getByText("Scheduled calls").click();
    const at = new Date(Date.now() + 2 * 24 * 3600_000);
    at.setHours(9, 30, 0, 0);
    const local = (d: Date) =>
      `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}T${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
    await page.getByLabel("Starts at").fill(local(at));
    await page.getByLabel("Kind").selectOption("audio");
    await page.getByLabel("Call title (optional)").fill("Daily standup");
    await page.getByRole("button", { name: "Schedule call" }).click();
    await page.getByRole("list", { name: "Scheduled calls" }).getByText(/Daily standup/).waitFor();
    type S = { id: string; starts_at: string; kind: string; title: string; cancelled: boolean };
    const listed = async () => ((await get(bob, `/v1/calls/scheduled?conversation_id=${id}`)).body.data as unknown as Items<S>).items;
    const [s] = await listed();
    expect(s).toMatchObject({ kind: "audio", title: "Daily standup", cancelled: false });
    expect(Date.parse(s!.starts_at)).toBe(at.getTime());
    await noAxe(page, "scheduled calls");

    await page.getByRole("button", { name: /^Move Daily standup/ }).click();
    const later = new Date(at.getTime() + 3600_000);
    await page.getByLabel("New start").fill(local(later));
    await page.getByRole("button", { name: "Save time" }).click();
    await page.getByRole("status").filter({ hasText: "Call moved" }).waitFor();
    expect(Date.parse((await listed())[0]!.starts_at)).toBe(later.getTime());

    await page.getByRole("button", { name: /^Cancel Daily standup/ }).click();
    await page.getByRole("status").filter({ hasText: "Call cancelled." }).waitFor();
    expect((await listed()).every((x) => x.cancelled)).toBe(true);
    await page.getByText("No call is planned.").waitFor();
  });

  it("says who has seen the last message", async () => {
    const c = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", { kind: "group", member_ids: [bob.id, carol.id], title: "Seen" });
    const id = c.body.data.id as string;
    const page = await signedIn("alice");
    await page.goto(`/c/${id}`);
    await page.getByRole("textbox", { name: "Message" }).fill("Did you read this?");
    await page.getByRole("button", { name: "Send" }).click();
    const msgs = await until(
      () => get(bob, `/v1/conversations/${id}/messages`),
      (r) => (r.body.data as unknown as Items<unknown>).items.length === 1,
      "message",
    );
    const seq = (msgs.body.data as unknown as Items<{ seq: number }>).items[0]!.seq;
    expect(await page.getByText(/^Seen by/).count()).toBe(0);
    await apiCall(suite.server.base, bob.token, "POST", `/v1/conversations/${id}/read`, { seq });
    await page.getByText("Seen by Bob Example").waitFor();
    await apiCall(suite.server.base, carol.token, "POST", `/v1/conversations/${id}/read`, { seq });
    await page.getByText("Seen by Bob Example and Carol Example").waitFor();
  });
});

describe("presence and call quality", () => {
  it("sets one's status in Settings and shows it to the other person", async () => {
    const c = await apiCall(suite.server.base, bob.token, "POST", "/v1/conversations", { kind: "direct", member_ids: [alice.id] });
    const id = c.body.data.id as string;
    const page = await signedIn("alice");
    await page.goto("/settings");
    await page.getByLabel("Your status").selectOption("away");
    await page.getByRole("status").filter({ hasText: "You appear away." }).waitFor();
    type P = { user_id: string; status: string };
    await until(
      () => get(bob, `/v1/presence?user_ids=${alice.id}`),
      (r) => (r.body.data as unknown as Items<P>).items.some((x) => x.user_id === alice.id && x.status === "away"),
      "away",
    );
    await noAxe(page, "settings status");
    const bobPage = await signedIn("bob");
    await bobPage.goto(`/c/${id}`);
    await bobPage.locator(".gaps-presence").filter({ hasText: "Away" }).waitFor();
    // Live: Alice comes back online and Bob's page follows without a reload.
    await page.getByLabel("Your status").selectOption("online");
    await bobPage.locator(".gaps-presence").filter({ hasText: "Online" }).waitFor();
  });

  it("shows the quality samples of a past call in the call history", async () => {
    const c = await apiCall(suite.server.base, alice.token, "POST", "/v1/conversations", { kind: "group", member_ids: [bob.id], title: "Calls" });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    const id = c.body.data.id as string;
    const call = await apiCall(suite.server.base, alice.token, "POST", "/v1/calls", { conversation_id: id, kind: "audio" });
    expect(call.status, JSON.stringify(call.body)).toBe(201);
    const callId = call.body.data.id as string;
    const q = await apiCall(suite.server.base, alice.token, "POST", `/v1/calls/${callId}/quality`, {
      rtt_ms: 42,
      jitter_ms: 3,
      packet_loss: 0.01,
      bitrate_kbps: 640,
    });
    expect(q.status, JSON.stringify(q.body)).toBeLessThan(300);
    const ended = await apiCall(suite.server.base, alice.token, "POST", `/v1/calls/${callId}/end`);
    expect(ended.status).toBe(200);
    const page = await signedIn("alice");
    await page.goto(`/c/${id}`);
    await page.getByText("Call history").click();
    await page.getByRole("button", { name: "Quality" }).click();
    const group = page.getByRole("group", { name: "Call quality" });
    await group.getByText(/Whole call: round trip 42 ms .*loss 1 %, 640 kbps, 1 sample/).waitFor();
    await group.getByText(/^Alice Example: round trip 42 ms/).waitFor();
    await noAxe(page, "call quality");
  });
});

describe("push devices", () => {
  it("lists the account's push devices and removes one", async () => {
    const sub = await apiCall(suite.server.base, alice.token, "POST", "/v1/push/subscriptions", {
      kind: "webpush",
      // Never contacted: nothing notifies Alice in this test.
      endpoint: "http://127.0.0.1:9/push/alice-phone",
      keys: {
        p256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
        auth: "tBHItJI5svbpez7KI4CCXg",
      },
      device_name: "Alice's phone",
    });
    expect(sub.status, JSON.stringify(sub.body)).toBeLessThan(300);
    const page = await signedIn("alice");
    await page.goto("/settings");
    await page.getByRole("list", { name: "Push devices" }).getByText("Alice's phone").waitFor();
    await noAxe(page, "push devices");
    await page.getByRole("button", { name: "Remove push device Alice's phone" }).click();
    await page.getByRole("status").filter({ hasText: "no longer receives push notifications" }).waitFor();
    // Removed on the server (the API token's session is another one than the browser's).
    const left = (await get(alice, "/v1/push/subscriptions")).body.data as unknown as Items<{ id: string }>;
    expect(left.items.map((x) => x.id)).not.toContain(sub.body.data.id);
  });
});

describe("account deletion", () => {
  it("needs the password and a confirmation, then the account is gone", async () => {
    await apiUser(suite.server.base, "dave", "Dave Example");
    // The wrong password's 400 is logged by the browser itself: this context's list expects it.
    const own: string[] = [];
    const page = await signedIn("dave", own);
    await page.goto("/settings");
    await page.getByRole("button", { name: "Delete my account…" }).click();
    await page.getByLabel("Your password").fill("not-the-password-1");
    await page.getByRole("button", { name: "Delete my account permanently" }).click();
    await page.getByRole("alert").filter({ hasText: "Tick the box" }).waitFor();
    await page.getByLabel("I understand that this cannot be undone").check();
    await page.getByRole("button", { name: "Delete my account permanently" }).click();
    await page.getByRole("alert").waitFor();
    await noAxe(page, "delete account");
    await page.getByLabel("Your password").fill(PASSWORD);
    await page.getByRole("button", { name: "Delete my account permanently" }).click();
    await page.getByLabel("Email or username").waitFor();
    const login = await fetch(`${suite.server.base}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "dave", password: PASSWORD }),
    });
    expect(login.status).toBe(401);
    expect(own.filter((p) => !/status of 400 .*\/v1\/users\/me\)$/.test(p))).toEqual([]);
    expect(own.length).toBe(1);
  });

  it("logged no console error or CSP violation", () => {
    expect(problems).toEqual([]);
  });
});
