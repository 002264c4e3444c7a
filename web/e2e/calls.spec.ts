// Calls in two real browsers against the real server: Alice calls Bob in their direct
// conversation, Bob's app rings and he accepts, both browsers' RTCPeerConnections connect
// (host candidates, signalled only through the server's `call.signal`) and play each other's
// fake camera; mute, the recording consent indicator and its upload reach the other side and the
// server; leaving ends the call; a declined call ends on the caller's side; the call history
// lists them. No console error, CSP violation or serious axe finding on the call screens.

import { statSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { accessibilityProblems, apiCall, apiUser, useSuite, watchedContext, signIn } from "./harness";

const suite = useSuite("calls", { media: true });
const problems: string[] = [];

/**
 * A page's realtime socket through the test, which can hold the server's frames back for a
 * while (to make both sides' offers cross: a glare), and counts the offers the page sends.
 */
interface Socket {
  holding: boolean;
  held: (() => void)[];
  offersSent: number;
}

function release(s: Socket): void {
  s.holding = false;
  for (const send of s.held.splice(0)) send();
}

async function signedIn(username: string, socket?: Socket): Promise<Page> {
  const context = await watchedContext(suite, problems, { permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  if (socket) {
    await page.routeWebSocket(/\/v1\/realtime/, (ws) => {
      const upstream = ws.connectToServer();
      upstream.onMessage((m) => (socket.holding ? socket.held.push(() => ws.send(m)) : ws.send(m)));
      ws.onMessage((m) => {
        if (typeof m === "string" && m.includes('"call.signal"') && m.includes('"kind":"offer"')) socket.offersSent++;
        upstream.send(m);
      });
    });
  }
  await signIn(page, username);
  return page;
}

async function open(page: Page, name: string): Promise<void> {
  await page.getByRole("list", { name: "Conversations" }).getByRole("listitem", { name: new RegExp(name) }).getByRole("link").click();
  await page.getByRole("list", { name: "Messages" }).waitFor({ state: "attached" });
}

function tile(page: Page, name: string) {
  return page.getByRole("list", { name: "Participants" }).getByRole("listitem", { name });
}

async function axe(page: Page, where: string): Promise<void> {
  expect(await accessibilityProblems(page), where).toEqual([]);
}

describe("calls in the browser", () => {
  let alice: Page;
  let bob: Page;
  let aliceApi: { token: string; id: string };
  let callId = "";
  let bobId = "";
  const aliceSocket: Socket = { holding: false, held: [], offersSent: 0 };
  const bobSocket: Socket = { holding: false, held: [], offersSent: 0 };

  // A failed test must not leave its call live for the next one (or for its own retry).
  afterEach(async (ctx) => {
    release(aliceSocket);
    release(bobSocket);
    if (ctx.task.result?.state !== "fail") return;
    for (const p of [alice, bob]) {
      const leave = p?.getByRole("region", { name: /call: /i }).getByRole("button", { name: "Leave" });
      if (leave && (await leave.count()) > 0) {
        await leave.first().click();
        await p!.getByRole("region", { name: /call: /i }).waitFor({ state: "detached" });
      }
    }
    problems.splice(0);
  });

  it("rings, connects both browsers, shows mute and recording, and ends when one leaves", async () => {
    aliceApi = await apiUser(suite.server.base, "alice", "Alice Liddell");
    const bobApi = await apiUser(suite.server.base, "bob", "Bob Builder");
    bobId = bobApi.id;
    const conv = await apiCall(suite.server.base, aliceApi.token, "POST", "/v1/conversations", { kind: "direct", member_ids: [bobApi.id] });
    expect(conv.status).toBe(201);

    alice = await signedIn("alice", aliceSocket);
    bob = await signedIn("bob", bobSocket);
    await open(alice, "Bob Builder");
    await open(bob, "Alice Liddell");

    // Alice starts a video call: her view rings, Bob's app shows the incoming call.
    const created = alice.waitForResponse((r) => r.url().endsWith("/v1/calls") && r.request().method() === "POST");
    await alice.getByRole("button", { name: "Video call", exact: true }).click();
    callId = ((await (await created).json()) as { data: { id: string } }).data.id;
    await alice.getByRole("region", { name: /Video call: Bob Builder/ }).getByText("Ringing…").waitFor();
    const ring = bob.getByRole("alertdialog", { name: "Incoming video call" });
    await ring.waitFor();
    await ring.getByText("From Alice Liddell").waitFor();
    await axe(bob, "ringing");

    await ring.getByRole("button", { name: "Accept" }).click();
    await ring.waitFor({ state: "detached" });

    // Both peer connections reach "connected", through offers, answers and candidates relayed by the server.
    const bobOnAlice = tile(alice, "Bob Builder");
    const aliceOnBob = tile(bob, "Alice Liddell");
    await bobOnAlice.and(alice.locator('[data-connection="connected"]')).waitFor({ timeout: 20_000 });
    await aliceOnBob.and(bob.locator('[data-connection="connected"]')).waitFor({ timeout: 20_000 });
    await bobOnAlice.getByText("Connected").waitFor();
    await aliceOnBob.getByText("Connected").waitFor();
    // And the other's fake camera is actually playing on each side.
    for (const t of [bobOnAlice, aliceOnBob]) {
      await expect
        .poll(() => t.locator("video").evaluate((v: HTMLVideoElement) => v.videoWidth > 0 && !v.paused && v.readyState >= 2), {
          timeout: 15_000,
        })
        .toBe(true);
    }
    const live = await apiCall(suite.server.base, aliceApi.token, "GET", `/v1/calls/${callId}`);
    expect(live.body.data["status"]).toBe("active");
    await axe(alice, "call view (caller)");
    await axe(bob, "call view (callee)");
    // At a phone's width (the call takes the screen) and in the dark scheme too.
    await bob.setViewportSize({ width: 390, height: 800 });
    await bob.emulateMedia({ colorScheme: "dark" });
    await axe(bob, "call view, phone width, dark");
    expect(await bob.evaluate(() => document.documentElement.scrollWidth <= innerWidth)).toBe(true);
    await bob.setViewportSize({ width: 1280, height: 720 });
    await bob.emulateMedia({ colorScheme: "light" });

    // Mute: Bob sees Alice muted, the server has it.
    expect(await aliceOnBob.getByText("Muted").count()).toBe(0);
    await alice.getByRole("button", { name: "Mute", exact: true }).click();
    await aliceOnBob.getByText("Muted").waitFor();
    await alice.getByRole("button", { name: "Unmute" }).waitFor();
    const muted = await apiCall(suite.server.base, aliceApi.token, "GET", `/v1/calls/${callId}`);
    const parts = muted.body.data["participants"] as { user_id: string; audio: boolean }[];
    expect(parts.find((p) => p.user_id === aliceApi.id)?.audio).toBe(false);

    // Screen sharing replaces the outgoing video: Bob sees the flag, the server has it.
    await alice.getByRole("button", { name: "Share screen" }).click();
    await aliceOnBob.getByText("Sharing screen").waitFor();
    await alice.getByRole("list", { name: "Participants" }).getByText("Sharing screen").waitFor();
    const sharing = await apiCall(suite.server.base, aliceApi.token, "GET", `/v1/calls/${callId}`);
    expect((sharing.body.data["participants"] as { user_id: string; screen: boolean }[]).find((p) => p.user_id === aliceApi.id)?.screen).toBe(true);
    await alice.getByRole("button", { name: "Stop sharing" }).click();
    await expect.poll(() => aliceOnBob.getByText("Sharing screen").count()).toBe(0);

    // Recording with consent: Bob sees who records; the file lands in Alice's drive, attached to the call.
    await alice.getByRole("button", { name: "Record" }).click();
    await bob.getByRole("status").filter({ hasText: "Recording by Alice Liddell" }).waitFor();
    await alice.getByRole("status").filter({ hasText: "Recording by You" }).waitFor();
    expect(await bob.getByRole("button", { name: "Record" }).isDisabled()).toBe(true);
    await axe(bob, "call view while recording");
    await alice.waitForTimeout(2500);
    await alice.getByRole("button", { name: "Stop recording" }).click();
    await alice.getByText("The recording was saved to your drive and attached to the call.").waitFor({ timeout: 20_000 });
    await expect.poll(() => bob.getByText(/Recording by/).count()).toBe(0);
    const recorded = await apiCall(suite.server.base, aliceApi.token, "GET", `/v1/calls/${callId}`);
    const recs = recorded.body.data["recordings"] as { file_id: string | null; recorded_by: string }[];
    expect(recs).toHaveLength(1);
    expect(recs[0]!.recorded_by).toBe(aliceApi.id);
    const file = await apiCall(suite.server.base, aliceApi.token, "GET", `/v1/files/${recs[0]!.file_id}`);
    expect(file.status).toBe(200);
    expect(file.body.data["content_type"]).toBe("video/webm");
    expect(file.body.data["size"] as number).toBeGreaterThan(1000);

    // Quality samples from getStats reach the server while connected (every 10 s).
    await expect
      .poll(async () => {
        const q = await apiCall(suite.server.base, aliceApi.token, "GET", `/v1/calls/${callId}/quality`);
        return (q.body.data["call"] as { samples: number }).samples;
      }, { timeout: 25_000, interval: 1000 })
      .toBeGreaterThan(0);

    // Alice leaves: Bob, alone, leaves too, and the call is over.
    await alice.getByRole("button", { name: "Leave" }).click();
    await alice.getByRole("region", { name: /Video call/ }).waitFor({ state: "detached" });
    await bob.getByRole("region", { name: /Video call/ }).waitFor({ state: "detached" });
    await expect
      .poll(async () => (await apiCall(suite.server.base, aliceApi.token, "GET", `/v1/calls/${callId}`)).body.data["status"])
      .toBe("ended");
  });

  it("ends a declined call on the caller's side, and lists the calls in the history", async () => {
    await alice.getByRole("button", { name: "Call", exact: true }).click();
    await alice.getByRole("region", { name: /Call: Bob Builder/ }).waitFor();
    const ring = bob.getByRole("alertdialog", { name: "Incoming call" });
    await ring.getByRole("button", { name: "Decline" }).click();
    await alice.getByRole("region", { name: /Call: Bob Builder/ }).waitFor({ state: "detached" });
    await alice.getByText("The call was declined.").waitFor();

    // A call the caller gives up while it rings stops ringing on the other side.
    await alice.getByRole("button", { name: "Call", exact: true }).click();
    const ring2 = bob.getByRole("alertdialog", { name: "Incoming call" });
    await ring2.waitFor();
    await alice.getByRole("region", { name: /Call: Bob Builder/ }).getByRole("button", { name: "Leave" }).click();
    await ring2.waitFor({ state: "detached" });

    await bob.getByText("Call history").click();
    const history = bob.getByRole("list", { name: "Call history" });
    await history.getByText("Call, incoming, declined").waitFor();
    await history.getByText("Call, incoming, missed").waitFor();
    await history.getByText(/Video call, incoming, \d+ s/).waitFor();
    await history.getByText("1 recording").waitFor();
    // Bob took part: he may download Alice's recording.
    const download = bob.waitForEvent("download");
    await history.getByRole("button", { name: /Download recording/ }).click();
    const saved = await (await download).path();
    expect(statSync(saved).size).toBeGreaterThan(1000);
    await axe(bob, "call history");
    expect(problems).toEqual([]);
  });

  // Retried once: it failed once in CI on a loaded machine (the video did not arrive within
  // 15 s after the glare) and passes on every local run; see the closing note of 2026-12-04.
  it("renegotiates through a glare when both turn a camera on in an audio call; the caller ends it for everyone", { retry: 1 }, async () => {
    const created = alice.waitForResponse((r) => r.url().endsWith("/v1/calls") && r.request().method() === "POST");
    await alice.getByRole("button", { name: "Call", exact: true }).click();
    const id = ((await (await created).json()) as { data: { id: string } }).data.id;
    await bob.getByRole("alertdialog", { name: "Incoming call" }).getByRole("button", { name: "Accept" }).click();
    const bobOnAlice = tile(alice, "Bob Builder");
    await bobOnAlice.and(alice.locator('[data-connection="connected"]')).waitFor({ timeout: 20_000 });
    await tile(bob, "Alice Liddell").and(bob.locator('[data-connection="connected"]')).waitFor({ timeout: 20_000 });
    const aliceOnBob = tile(bob, "Alice Liddell");
    // No video in an audio call until the cameras are turned on: new tracks, new offers. Both
    // at once, with each side's incoming frames held until both offers are out: a glare, which
    // the perfect negotiation pattern resolves (the polite side rolls back and answers).
    expect(await bobOnAlice.locator("video.off").count()).toBe(1);
    expect(await aliceOnBob.locator("video.off").count()).toBe(1);
    const offers = [aliceSocket.offersSent, bobSocket.offersSent] as const;
    aliceSocket.holding = bobSocket.holding = true;
    await Promise.all([
      alice.getByRole("button", { name: "Turn camera on" }).click(),
      bob.getByRole("button", { name: "Turn camera on" }).click(),
    ]);
    await expect.poll(() => aliceSocket.offersSent > offers[0] && bobSocket.offersSent > offers[1]).toBe(true);
    release(aliceSocket);
    release(bobSocket);
    for (const t of [bobOnAlice, aliceOnBob]) {
      await expect
        .poll(() => t.locator("video").evaluate((v: HTMLVideoElement) => v.videoWidth > 0 && !v.classList.contains("off")), {
          timeout: 15_000,
        })
        .toBe(true);
      await t.getByText("Connected").waitFor();
    }

    await alice.getByRole("button", { name: "End call" }).click();
    await bob.getByRole("region", { name: /Call: Alice Liddell/ }).waitFor({ state: "detached" });
    await bob.getByText("The call ended.").waitFor();
    expect((await apiCall(suite.server.base, aliceApi.token, "GET", `/v1/calls/${id}`)).body.data["status"]).toBe("ended");
    expect(problems).toEqual([]);
  });

  it("connects a group call as a full mesh of three", async () => {
    const carolApi = await apiUser(suite.server.base, "carol", "Carol Danvers");
    const members = [carolApi.id, bobId];
    const group = await apiCall(suite.server.base, aliceApi.token, "POST", "/v1/conversations", {
      kind: "group",
      title: "Mesh trio",
      member_ids: members,
    });
    expect(group.status).toBe(201);
    const carol = await signedIn("carol");
    for (const p of [alice, bob, carol]) await open(p, "Mesh trio");

    await alice.getByRole("button", { name: "Video call", exact: true }).click();
    for (const p of [bob, carol]) {
      await p.getByRole("alertdialog", { name: "Incoming video call" }).getByRole("button", { name: "Accept" }).click();
    }
    const everyone: [Page, string[]][] = [
      [alice, ["Bob Builder", "Carol Danvers"]],
      [bob, ["Alice Liddell", "Carol Danvers"]],
      [carol, ["Alice Liddell", "Bob Builder"]],
    ];
    for (const [p, others] of everyone) {
      for (const name of others) await tile(p, name).and(p.locator('[data-connection="connected"]')).waitFor({ timeout: 30_000 });
      await p.getByText("In call with 2 others").waitFor();
    }
    // Carol leaves: the other two stay connected; then they leave and the call is over.
    await carol.getByRole("button", { name: "Leave" }).click();
    await expect.poll(() => tile(alice, "Carol Danvers").count()).toBe(0);
    await expect.poll(() => tile(bob, "Carol Danvers").count()).toBe(0);
    expect(await tile(alice, "Bob Builder").getAttribute("data-connection")).toBe("connected");
    await bob.getByRole("button", { name: "Leave" }).click();
    await alice.getByText("Everyone else left: the call ended.").waitFor();
    expect(problems).toEqual([]);
  });
});
