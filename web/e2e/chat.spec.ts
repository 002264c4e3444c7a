// The product in a real browser against the real server: two people create accounts, find
// each other and chat in real time; a hostile message sent through the API stays inert text;
// a reload keeps the session (HttpOnly cookie), "Sign out" ends it on the server; and no page
// logs a console error or a CSP violation on the way.

import { describe, expect, it } from "vitest";
import type { BrowserContext, Page, WebSocketRoute } from "playwright-core";
import {
  PASSWORD,
  accessibilityProblems,
  apiCall,
  apiUser,
  useSuite,
  watchedContext,
  submitSignIn,
  createAccountInApp,
} from "./harness";

const suite = useSuite("chat");
const problems: string[] = [];
const contexts: BrowserContext[] = [];

async function newPage(): Promise<Page> {
  const context = await watchedContext(suite, problems);
  contexts.push(context);
  return context.newPage();
}

function messages(page: Page) {
  return page.getByRole("list", { name: "Messages" });
}

async function send(page: Page, text: string): Promise<void> {
  await page.getByRole("textbox", { name: "Message" }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/**
 * Alice's realtime socket passes through the test: it can swallow the server's frames (as a
 * connection that silently died would) and cut the socket, to see the app reconnect and catch up.
 */
const aliceSocket = { dropping: false, current: null as WebSocketRoute | null };

async function routeSocket(page: Page): Promise<void> {
  await page.routeWebSocket(/\/v1\/realtime/, (ws) => {
    const upstream = ws.connectToServer();
    aliceSocket.current = ws;
    upstream.onMessage((m) => {
      if (!aliceSocket.dropping) ws.send(m);
    });
    ws.onMessage((m) => upstream.send(m));
  });
}

describe("chat in the browser", () => {
  let alice: Page;
  let bob: Page;
  let aliceToken = "";

  it("lets two people create accounts, find each other and chat in real time", async () => {
    alice = await newPage();
    await routeSocket(alice);
    bob = await newPage();
    // The access token the app keeps in memory, for the server-side checks below.
    alice.on("response", async (r) => {
      if (r.url().endsWith("/v1/auth/browser/register") || r.url().endsWith("/v1/auth/browser/refresh")) {
        const body = (await r.json().catch(() => null)) as { data?: { access_token?: string } } | null;
        if (body?.data?.access_token) aliceToken = body.data.access_token;
      }
    });
    await createAccountInApp(alice, "alice", "Alice Liddell");
    await createAccountInApp(bob, "bob", "Bob Builder");

    await alice.getByText("New conversation").click();
    await alice.getByLabel("Usernames").fill("bob");
    await alice.getByRole("button", { name: "Start conversation" }).click();
    await messages(alice).waitFor();
    await send(alice, "Hello Bob, this is Alice");
    await messages(alice).getByRole("listitem").filter({ hasText: "Hello Bob, this is Alice" }).waitFor();

    // Bob's list learns about the conversation over the socket, with its unread count.
    const item = bob.getByRole("list", { name: "Conversations" }).getByRole("listitem", { name: /Alice Liddell/ });
    await item.waitFor();
    await expect.poll(() => item.getAttribute("aria-label")).toContain("1 unread");
    await item.getByRole("link").click();
    await messages(bob).getByRole("listitem").filter({ hasText: "Hello Bob, this is Alice" }).waitFor();

    // And back, without a reload on either side; Alice sees Bob typing first.
    await bob.getByRole("textbox", { name: "Message" }).fill("Hi Alice! Bob here.");
    await alice.getByRole("status").filter({ hasText: "Bob Builder is typing…" }).waitFor();
    await bob.getByRole("button", { name: "Send" }).click();
    await messages(alice).getByRole("listitem").filter({ hasText: "Hi Alice! Bob here." }).waitFor();
    await expect.poll(() => alice.getByText("Bob Builder is typing…").count()).toBe(0);
    await expect.poll(() => messages(bob).getByRole("listitem").count()).toBe(2);

    // Alice edits hers, Bob deletes his: both sides see it happen.
    const hers = messages(alice).getByRole("listitem").filter({ hasText: "Hello Bob, this is Alice" });
    await hers.getByRole("button", { name: "Edit" }).click();
    await alice.getByRole("textbox", { name: "Edit message" }).fill("Hello Bob, this is Alice (edited by hand)");
    await alice.getByRole("button", { name: "Save" }).click();
    await messages(bob).getByRole("listitem").filter({ hasText: "edited by hand" }).waitFor();
    expect(await messages(bob).getByText("(edited)").count()).toBe(1);
    bob.once("dialog", (d) => void d.accept());
    await messages(bob).getByRole("listitem").filter({ hasText: "Bob here" }).getByRole("button", { name: "Delete" }).click();
    await messages(alice).getByRole("listitem").filter({ hasText: "This message was deleted." }).waitFor();
    expect(await messages(alice).getByText("Bob here").count()).toBe(0);
    // Only one's own messages have the actions.
    expect(await messages(alice).getByRole("button", { name: "Delete" }).count()).toBe(1);
  });

  it("shows a hostile message sent through the API as inert text", async () => {
    const mallory = await apiUser(suite.server.base, "mallory", "<b>Mallory</b>");
    const aliceId = (await apiCall(suite.server.base, aliceToken, "GET", "/v1/users/me")).body.data["id"] as string;
    const conv = await apiCall(suite.server.base, mallory.token, "POST", "/v1/conversations", {
      kind: "direct",
      member_ids: [aliceId],
    });
    expect(conv.status).toBe(201);
    const payload =
      `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>` +
      ` <a href="javascript:window.__pwned=3">click</a> javascript:window.__pwned=4 https://example.org/safe?q=1`;
    const sent = await apiCall(suite.server.base, mallory.token, "POST", `/v1/conversations/${conv.body.data["id"]}/messages`, {
      client_message_id: "xss-1",
      content: payload,
    });
    expect(sent.status).toBe(201);

    const item = alice.getByRole("list", { name: "Conversations" }).getByRole("listitem", { name: /<b>Mallory<\/b>/ });
    await item.getByRole("link").click();
    const message = messages(alice).getByRole("listitem").filter({ hasText: "onerror" });
    await message.waitFor();
    // The markup is shown as the characters it is made of.
    expect(await message.locator(".text").innerText()).toContain(`<img src=x onerror="window.__pwned=1">`);
    expect(await message.locator("img, script, b").count()).toBe(0);
    // Only the https URL became a link, and it cannot reach back into this page.
    const links = message.getByRole("link");
    expect(await links.count()).toBe(1);
    expect(await links.first().getAttribute("href")).toBe("https://example.org/safe?q=1");
    expect(await links.first().getAttribute("rel")).toBe("noopener noreferrer");
    expect(await links.first().getAttribute("target")).toBe("_blank");
    expect(await alice.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it("reconnects by itself and catches up on what the dead socket missed", async () => {
    const bobToken = (
      (await (
        await fetch(`${suite.server.base}/v1/auth/login`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: "bob", password: PASSWORD }),
        })
      ).json()) as { data: { access_token: string } }
    ).data.access_token;
    const bobsItem = alice.getByRole("list", { name: "Conversations" }).getByRole("listitem", { name: /Bob Builder/ });
    await bobsItem.getByRole("link").click();
    await messages(alice).getByRole("listitem").first().waitFor();
    const convId = new URL(alice.url()).pathname.split("/").pop()!;

    // The socket still looks open but delivers nothing: these two are missed.
    aliceSocket.dropping = true;
    for (const [i, text] of ["missed one", "missed two"].entries()) {
      const r = await apiCall(suite.server.base, bobToken, "POST", `/v1/conversations/${convId}/messages`, {
        client_message_id: `missed-${i}`,
        content: text,
      });
      expect(r.status).toBe(201);
    }
    await alice.waitForTimeout(300);
    expect(await messages(alice).getByRole("listitem").filter({ hasText: "missed one" }).count()).toBe(0);

    // The connection drops; the app reconnects with a new ticket and fetches after_seq.
    const dead = aliceSocket.current!;
    aliceSocket.dropping = false;
    await dead.close({ code: 4000, reason: "test: connection lost" });
    await messages(alice).getByRole("listitem").filter({ hasText: "missed two" }).waitFor({ timeout: 20_000 });
    expect(aliceSocket.current).not.toBe(dead);
    const texts = await messages(alice).getByRole("listitem").locator(".text").allInnerTexts();
    expect(texts.filter((t) => t.startsWith("missed"))).toEqual(["missed one", "missed two"]);

    // And the new socket delivers live again.
    await send(bob, "live after the reconnect");
    await messages(alice).getByRole("listitem").filter({ hasText: "live after the reconnect" }).waitFor();
  });

  it("starts a group with a title, lists its members, and lets a member leave", async () => {
    await alice.getByText("New conversation").click();
    await alice.getByLabel("Usernames").fill("bob");
    await alice.getByLabel("Group title (optional)").fill("Weekend plans");
    await alice.getByRole("button", { name: "Start conversation" }).click();
    await alice.getByRole("heading", { name: "Weekend plans" }).waitFor();
    await send(alice, "Who is in for a hike?");

    const bobsList = bob.getByRole("list", { name: "Conversations" });
    await bobsList.getByRole("link", { name: /Weekend plans/ }).click();
    await messages(bob).getByText("Who is in for a hike?").waitFor();
    await bob.getByText("Members (2)").click();
    const members = bob.getByRole("list", { name: "Members" });
    await members.getByRole("listitem").filter({ hasText: "Alice Liddell" }).filter({ hasText: "owner" }).waitFor();
    bob.once("dialog", (d) => void d.accept());
    await bob.getByRole("button", { name: "Leave conversation" }).click();
    await expect.poll(() => bobsList.getByRole("listitem", { name: /Weekend plans/ }).count()).toBe(0);
  });

  it("finds messages and opens the conversation of a result", async () => {
    await alice.getByRole("link", { name: /Weekend plans/ }).click();
    await messages(alice).getByText("Who is in for a hike?").waitFor();
    await alice.getByRole("searchbox", { name: "Search messages" }).fill("edited by hand");
    await alice.getByRole("searchbox", { name: "Search messages" }).press("Enter");
    const results = alice.getByRole("list", { name: "Search results" });
    const hit = results.getByRole("link", { name: /edited by hand/ });
    await hit.waitFor();
    expect(await results.getByRole("listitem").count()).toBe(1);
    await hit.click();
    await alice.getByRole("heading", { name: "Bob Builder" }).waitFor();
    await messages(alice).getByText("edited by hand").waitFor();
  });

  it("keeps the session across a reload, and Sign out ends it on the server", async () => {
    await alice.reload();
    await alice.getByRole("list", { name: "Conversations" }).getByRole("listitem", { name: /Bob Builder/ }).waitFor();
    // The refresh token is out of the page's reach.
    expect(await alice.evaluate(() => document.cookie)).not.toContain("sc_refresh");
    const cookies = await alice.context().cookies();
    const refresh = cookies.find((c) => c.name === "sc_refresh");
    expect(refresh?.httpOnly).toBe(true);
    expect(refresh?.sameSite).toBe("Strict");
    expect(refresh?.path).toBe("/v1/auth/browser");
    const token = aliceToken;
    expect((await apiCall(suite.server.base, token, "GET", "/v1/users/me")).status).toBe(200);

    await alice.getByRole("button", { name: "Sign out" }).click();
    await alice.getByRole("button", { name: "Sign in" }).waitFor();
    expect((await apiCall(suite.server.base, token, "GET", "/v1/users/me")).status).toBe(401);
    expect((await alice.context().cookies()).find((c) => c.name === "sc_refresh")).toBeUndefined();
    await alice.reload();
    await alice.getByRole("button", { name: "Sign in" }).waitFor();

    // Signing in again with the app's form.
    await submitSignIn(alice, "alice");
    await alice.getByRole("list", { name: "Conversations" }).getByRole("listitem", { name: /Bob Builder/ }).waitFor();
  });

  it("has no serious or critical accessibility finding on its screens", async () => {
    // Signed in, a conversation open, in the light and the dark scheme.
    await alice.getByRole("list", { name: "Conversations" }).getByRole("link", { name: /Bob Builder/ }).click();
    await messages(alice).getByRole("listitem").first().waitFor();
    for (const colorScheme of ["light", "dark"] as const) {
      await alice.emulateMedia({ colorScheme });
      expect(await accessibilityProblems(alice), `signed in, ${colorScheme}`).toEqual([]);
    }
    const guest = await newPage();
    await guest.goto("/");
    await guest.getByRole("button", { name: "Sign in" }).waitFor();
    expect(await accessibilityProblems(guest), "sign in").toEqual([]);
    await guest.getByRole("link", { name: "Create account" }).click();
    await guest.getByRole("button", { name: "Create account" }).waitFor();
    expect(await accessibilityProblems(guest), "create account").toEqual([]);
    // A phone's width: the same page in one column.
    await alice.setViewportSize({ width: 375, height: 720 });
    expect(await accessibilityProblems(alice), "phone width").toEqual([]);
    expect(await alice.getByRole("textbox", { name: "Message" }).isVisible()).toBe(true);
  });

  it("logged no console error and no CSP violation", () => {
    expect(problems).toEqual([]);
  });
});
