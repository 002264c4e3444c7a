// Administration and the AI helpers in a real browser against the real server:
// - an administrator made with the CLI is first told to turn on 2FA (the default
//   admin_require_2fa), then sees the statistics and users, bans a signed-in user (whose page is
//   signed out at once and whose token stops working), changes a quota, and finds the ban in the
//   audit log; a non-admin has no Admin link and /admin says not allowed;
// - with an OpenAI-compatible stub provider (started here, checking the bearer key), the
//   assistant streams the stub's tokens as they arrive, Stop aborts the request (the stub sees
//   its stream dropped), a summary of an ai_enabled conversation shows the stub's text, and a
//   generated image is offered as a download link whose bytes are the stub's PNG.
// No console error or CSP violation on these screens, and no serious axe finding.

import { type IncomingMessage, type Server as HttpServer, type ServerResponse, createServer } from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import {
  accessibilityProblems,
  apiCall,
  apiUser,
  totpCode,
  useSuite,
  signIn,
  apiLogin,
  watchedContext,
  submitSignIn,
} from "./harness";
import { createAdmin } from "./fixtures";

const KEY = "stub-key-7f3a";
const TINY_PNG_B64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
const REPLY = "Hello from the stub model, Carol! Streams arrive piece by piece.";
const SUMMARY = "STUB SUMMARY: the team agreed to ship on Friday.";

/** What the stub saw. */
const stub = { unauthorized: 0, streams: 0, cancelled: 0, chatBodies: [] as unknown[], failNextImage: false };

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((ok) => {
    let s = "";
    req.on("data", (c: Buffer) => (s += c.toString("utf8")));
    req.on("end", () => ok(s));
  });
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** An OpenAI-compatible provider: /v1/models, /v1/chat/completions (SSE too), /v1/images/generations. */
function startStub(): Promise<{ base: string; close(): Promise<void> }> {
  const srv: HttpServer = createServer(async (req, res) => {
    if (req.headers.authorization !== `Bearer ${KEY}`) {
      stub.unauthorized++;
      return json(res, 401, { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } });
    }
    if (req.method === "GET" && req.url === "/v1/models") {
      return json(res, 200, { object: "list", data: [{ id: "stub-chat", object: "model" }, { id: "stub-image", object: "model" }] });
    }
    const body = JSON.parse((await readBody(req)) || "{}") as Record<string, unknown>;
    if (req.method === "POST" && req.url === "/v1/images/generations") {
      if (stub.failNextImage) {
        stub.failNextImage = false;
        return json(res, 500, { error: { message: "the GPU fell over", type: "server_error" } });
      }
      return json(res, 200, { created: 1, data: [{ b64_json: TINY_PNG_B64 }] });
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") return json(res, 404, { error: { message: "no route" } });
    stub.chatBodies.push(body);
    const messages = body.messages as { role: string; content: string }[];
    const last = messages[messages.length - 1]?.content ?? "";
    if (!body.stream) {
      return json(res, 200, {
        id: "chatcmpl-1",
        object: "chat.completion",
        created: 1,
        model: body.model,
        choices: [{ index: 0, message: { role: "assistant", content: SUMMARY }, finish_reason: "stop" }],
        usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
      });
    }
    stub.streams++;
    const slow = last.includes("slowly");
    const pieces = slow
      ? Array.from({ length: 300 }, (_, i) => `word${i} `)
      : (REPLY.match(/.{1,5}/g) ?? []);
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    let finished = false;
    res.on("close", () => {
      if (!finished) stub.cancelled++;
    });
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id: "chatcmpl-2", object: "chat.completion.chunk", created: 1, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    res.write(chunk({ role: "assistant", content: "" }, null));
    if (last.includes("break")) {
      // The provider's connection drops mid-answer.
      res.write(chunk({ content: "Half an ans" }, null));
      await new Promise((r) => setTimeout(r, 200));
      res.destroy();
      return;
    }
    for (const p of pieces) {
      if (res.destroyed) return;
      await new Promise((r) => setTimeout(r, slow ? 150 : 40));
      if (res.destroyed) return;
      res.write(chunk({ content: p }, null));
    }
    res.write(chunk({}, "stop"));
    res.write(`data: ${JSON.stringify({ id: "chatcmpl-2", object: "chat.completion.chunk", created: 1, model: body.model, choices: [], usage: { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 } })}\n\n`);
    res.write("data: [DONE]\n\n");
    finished = true;
    res.end();
  });
  return new Promise((ok) => {
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const port = typeof a === "object" && a ? a.port : 0;
      ok({ base: `http://127.0.0.1:${port}/v1`, close: () => new Promise<void>((c) => srv.close(() => c())) });
    });
  });
}

let provider: { base: string; close(): Promise<void> };
const problems: string[] = [];

const suite = useSuite("admin-ai", {
  env: async () => {
    provider = await startStub();
    // admin_require_2fa stays at its default (true).
    return {
      SC_AI_BASE_URL: provider.base,
      SC_AI_API_KEY: KEY,
      SC_AI_MODEL: "stub-chat",
      SC_AI_IMAGE_MODEL: "stub-image",
      // Carol's requests below: 3 chats, 2 images, 1 summary; the 7th is over budget.
      SC_AI_REQUESTS_PER_USER_PER_DAY: "6",
    };
  },
});

afterAll(async () => {
  await provider?.close();
});

async function newContext(list: string[] = problems): Promise<{ context: BrowserContext; page: Page }> {
  const context = await watchedContext(suite, list);
  return { context, page: await context.newPage() };
}

async function noAxeProblems(page: Page) {
  expect(await accessibilityProblems(page)).toEqual([]);
}

describe("administration", () => {
  it("asks an admin without 2FA to turn it on, then manages users, bans and reads the audit log", async () => {
    const mallory = await apiUser(suite.server.base, "mallory", "Mallory Example");
    await apiUser(suite.server.base, "bob", "Bob Example");
    await createAdmin(suite.server, "root", "Root Admin");

    // Mallory is signed in in her own browser.
    const malloryProblems: string[] = [];
    const m = await newContext(malloryProblems);
    await signIn(m.page, "mallory");
    await m.page.getByText("Online", { exact: true }).waitFor();

    // The admin, without 2FA: the Admin link is there, the screen explains the 2FA rule.
    const gateProblems: string[] = [];
    const a = await newContext(gateProblems);
    await signIn(a.page, "root");
    await a.page.getByRole("link", { name: "Admin" }).click();
    await expect
      .poll(() => a.page.getByRole("alert").textContent())
      .toMatch(/turn on two-factor authentication/i);
    // Only the refused admin request was logged (the browser logs every 403).
    expect(gateProblems.filter((p) => !p.includes("status of 403"))).toEqual([]);

    // 2FA on (through the API, as the Settings screen does), and the screen opens.
    const rootToken = await apiLogin(suite.server.base, "root");
    const setup = await apiCall(suite.server.base, rootToken, "POST", "/v1/auth/2fa/setup");
    const secret = setup.body.data["secret"] as string;
    expect((await apiCall(suite.server.base, rootToken, "POST", "/v1/auth/2fa/enable", { code: totpCode(secret) })).status).toBe(200);
    const adminProblems: string[] = [];
    const { page } = await newContext(adminProblems);
    await page.goto("/");
    await submitSignIn(page, "root");
    // The enable used this time step's code, and a step is good once: the next one (±1 step is accepted).
    await page.getByLabel("Code").fill(totpCode(secret, Date.now() + 30_000));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    // The first login's TOTP_REQUIRED (401) is the browser's one logged line so far.
    expect(adminProblems.filter((p) => !p.includes("status of 401"))).toEqual([]);
    adminProblems.length = 0;
    await page.getByRole("link", { name: "Admin" }).click();
    await expect(page.url()).toMatch(/\/admin$/);

    const stats = page.getByRole("definition");
    await stats.first().waitFor();
    const statsList = page.locator("dl.admin-stats");
    await expect.poll(() => statsList.textContent()).toMatch(/Users\s*3/);

    const users = page.getByRole("list", { name: "Users" });
    await users.getByRole("listitem", { name: /Mallory Example @mallory/ }).waitFor();
    await expect.poll(() => users.getByRole("listitem").count()).toBe(3);
    await noAxeProblems(page);

    // Search narrows the list.
    await page.getByRole("searchbox", { name: "Search users" }).fill("mallo");
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(() => users.getByRole("listitem").count()).toBe(1);

    // Ban Mallory for a day.
    const row = users.getByRole("listitem", { name: /@mallory/ });
    await row.getByText("Manage @mallory").click();
    await row.getByLabel("Reason").fill("spam in every group");
    await row.getByLabel("Duration").selectOption("1d");
    await row.getByRole("button", { name: "Ban @mallory" }).click();
    await row.getByRole("status").filter({ hasText: "is banned" }).waitFor();
    await expect.poll(() => row.textContent()).toMatch(/Banned until/);
    await expect.poll(() => row.textContent()).toMatch(/spam in every group/);

    // Her page is signed out at once (socket closed 4003), and her API token is dead.
    await m.page.getByRole("button", { name: "Sign in" }).waitFor({ timeout: 10_000 });
    const me = await fetch(`${suite.server.base}/v1/users/me`, { headers: { authorization: `Bearer ${mallory.token}` } });
    expect(me.status).toBe(401);
    // Signing in again is refused while the ban lasts.
    await submitSignIn(m.page, "mallory");
    await m.page.getByRole("alert").waitFor();
    expect(malloryProblems.filter((p) => !p.includes("status of 403"))).toEqual([]);

    // Banning oneself is refused by the UI.
    await page.getByRole("searchbox", { name: "Search users" }).fill("root");
    await page.getByRole("button", { name: "Search" }).click();
    const rootRow = users.getByRole("listitem", { name: /@root/ });
    await rootRow.getByText("Manage @root").click();
    expect(await rootRow.getByRole("button", { name: "Ban @root" }).isDisabled()).toBe(true);

    // A quota for Bob.
    await page.getByRole("searchbox", { name: "Search users" }).fill("bob");
    await page.getByRole("button", { name: "Search" }).click();
    const bobRow = users.getByRole("listitem", { name: /@bob/ });
    await bobRow.getByText("Manage @bob").click();
    await bobRow.getByLabel("Storage quota").fill("2.5");
    await bobRow.getByLabel("Unit").selectOption("GB");
    await bobRow.getByRole("button", { name: "Set quota of @bob" }).click();
    await expect.poll(() => bobRow.textContent()).toMatch(/of 2\.5 GB/);

    // The audit log shows the ban, filtered by event.
    const audit = page.getByRole("list", { name: "Audit log" });
    await page.getByLabel("Event").selectOption("user.banned");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(() => audit.getByRole("listitem").count()).toBe(1);
    const entry = await audit.getByRole("listitem").first().textContent();
    expect(entry).toContain("user.banned");
    expect(entry).toContain(mallory.id);
    expect(entry).toContain("@mallory");
    await page.getByLabel("Event").selectOption("quota.changed");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(() => audit.textContent()).toContain("quota.changed");
    await noAxeProblems(page);

    // Unban.
    await page.getByRole("searchbox", { name: "Search users" }).fill("mallory");
    await page.getByRole("button", { name: "Search" }).click();
    await row.getByText("Manage @mallory").click();
    await row.getByRole("button", { name: "Unban @mallory" }).click();
    await expect.poll(() => row.textContent()).toMatch(/Active/);

    expect(adminProblems).toEqual([]);
    await a.context.close();
    await m.context.close();
  });

  it("shows a non-admin no Admin link, and /admin says not allowed", async () => {
    await apiUser(suite.server.base, "dave", "Dave Example");
    const { page, context } = await newContext();
    await signIn(page, "dave");
    await page.getByRole("link", { name: "Settings" }).waitFor();
    expect(await page.getByRole("link", { name: "Admin" }).count()).toBe(0);
    await page.goto("/admin");
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/not allowed/i);
    expect(await page.locator("dl.admin-stats").count()).toBe(0);
    await noAxeProblems(page);
    expect(problems).toEqual([]);
    await context.close();
  });
});

describe("AI helpers", () => {
  it("streams the assistant's answer, stops on Stop, summarizes and makes an image", async () => {
    const carol = await apiUser(suite.server.base, "carol", "Carol Example");
    const grace = await apiUser(suite.server.base, "grace", "Grace Example");
    const conv = await apiCall(suite.server.base, carol.token, "POST", "/v1/conversations", {
      kind: "group",
      title: "Release planning",
      member_ids: [grace.id],
    });
    const convId = conv.body.data["id"] as string;
    for (const [token, text] of [
      [carol.token, "Shall we ship the release on Friday?"],
      [grace.token, "Yes, Friday works for me."],
    ] as const) {
      await apiCall(suite.server.base, token, "POST", `/v1/conversations/${convId}/messages`, {
        client_message_id: crypto.randomUUID(),
        content: text,
      });
    }

    const { page, context } = await newContext();
    await signIn(page, "carol");
    // The server offers chat: the top bar links the assistant.
    await page.getByRole("link", { name: "Assistant" }).click();
    await expect(page.url()).toMatch(/\/assistant$/);

    // Without the opt-in the server answers 403, and the page says what to do.
    await page.getByRole("textbox", { name: "Ask the assistant" }).fill("Hello?");
    await page.getByRole("button", { name: "Ask" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/opt-in/);
    expect(stub.streams).toBe(0);
    // The browser logs that refused request; nothing else.
    expect(problems.filter((p) => !p.includes("status of 403"))).toEqual([]);
    problems.length = 0;

    await page.getByRole("checkbox", { name: "Use AI helpers" }).check();
    await page.getByRole("status").filter({ hasText: "AI helpers are on" }).waitFor();
    await noAxeProblems(page);

    // A streamed answer: the stub's pieces concatenate to its reply.
    await page.getByRole("textbox", { name: "Ask the assistant" }).fill("Say hello");
    await page.getByRole("button", { name: "Ask" }).click();
    const turns = page.getByRole("list", { name: "Assistant conversation" });
    await expect.poll(() => turns.getByRole("listitem").last().textContent(), { timeout: 15_000 }).toContain(REPLY);
    expect(stub.streams).toBe(1);
    const sent = stub.chatBodies[stub.chatBodies.length - 1] as { stream: boolean; messages: { content: string }[] };
    expect(sent.stream).toBe(true);
    expect(sent.messages.map((x) => x.content)).toEqual(["Say hello"]);
    await page.getByRole("button", { name: "Ask" }).waitFor();

    // A long answer arrives token by token; Stop aborts it and the provider's stream is dropped.
    await page.getByRole("textbox", { name: "Ask the assistant" }).fill("Count slowly please");
    await page.getByRole("button", { name: "Ask" }).click();
    const answer = turns.getByRole("listitem").last();
    await expect.poll(() => answer.textContent(), { timeout: 15_000 }).toContain("word2 ");
    expect(await page.getByRole("button", { name: "Stop" }).isVisible()).toBe(true);
    const partial = (await answer.textContent()) ?? "";
    expect(partial).not.toContain("word299");
    await page.getByRole("button", { name: "Stop" }).click();
    await answer.getByText("Stopped.").waitFor();
    await page.getByRole("button", { name: "Ask" }).waitFor();
    const stoppedAt = await answer.textContent();
    await expect.poll(() => stub.cancelled, { timeout: 10_000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(await answer.textContent()).toBe(stoppedAt);
    // The earlier turns went along with the next question.
    expect((stub.chatBodies[stub.chatBodies.length - 1] as { messages: unknown[] }).messages).toHaveLength(3);

    // The provider's connection drops mid-stream: the part that came stays, with an alert.
    await page.getByRole("textbox", { name: "Ask the assistant" }).fill("Please break");
    await page.getByRole("button", { name: "Ask" }).click();
    await expect
      .poll(() => page.getByRole("region", { name: "Chat" }).getByRole("alert").textContent(), { timeout: 15_000 })
      .toMatch(/AI service is unavailable/);
    expect(await answer.textContent()).toContain("Half an ans");
    expect(await answer.textContent()).toContain("The answer stopped");
    expect(problems).toEqual([]);

    // The image provider fails: 503, said plainly.
    stub.failNextImage = true;
    await page.getByLabel("Image prompt").fill("a lighthouse at dawn");
    await page.getByRole("button", { name: "Generate image" }).click();
    await expect
      .poll(() => page.getByRole("region", { name: "Images" }).getByRole("alert").textContent(), { timeout: 15_000 })
      .toMatch(/^The AI service is unavailable right now: .*unavailable/);
    expect(problems.filter((p) => !p.includes("status of 503"))).toEqual([]);
    problems.length = 0;

    // An image: saved in the drive, offered as a download link with the stub's bytes.
    await page.getByLabel("Image prompt").fill("a lighthouse at dusk");
    await page.getByLabel("Size").selectOption("256x256");
    await page.getByRole("button", { name: "Generate image" }).click();
    const download = page.getByRole("link", { name: /^Download / });
    await download.waitFor({ timeout: 15_000 });
    const href = await download.getAttribute("href");
    const bytes = Buffer.from(await (await fetch(new URL(href!, suite.server.base))).arrayBuffer());
    expect(bytes.equals(Buffer.from(TINY_PNG_B64, "base64"))).toBe(true);
    expect(await page.locator(".assistant img").count()).toBe(0);
    await noAxeProblems(page);

    // The conversation: Carol (owner) lets AI read it, then summarizes it.
    await page.getByRole("list", { name: "Conversations" }).getByRole("link", { name: /Release planning/ }).click();
    await page.getByText("AI (off)").click();
    const summarize = page.getByRole("button", { name: "Summarize" });
    expect(await summarize.isDisabled()).toBe(true);
    await page.getByRole("checkbox", { name: "Let AI helpers read this conversation" }).check();
    await expect.poll(() => summarize.isDisabled()).toBe(false);
    const got = await apiCall(suite.server.base, carol.token, "GET", `/v1/conversations/${convId}`);
    expect(got.body.data["ai_enabled"]).toBe(true);
    await summarize.click();
    const summary = page.getByRole("region", { name: "Summary" });
    await expect.poll(() => summary.textContent(), { timeout: 15_000 }).toContain(SUMMARY);
    // The transcript went to the provider as data, with the members' text.
    const last = stub.chatBodies[stub.chatBodies.length - 1] as { messages: { content: string }[] };
    expect(JSON.stringify(last.messages)).toContain("Friday works for me");
    await noAxeProblems(page);

    // The seventh request of the day is over the budget: the wait until it resets is shown.
    await summarize.click();
    await expect
      .poll(() => page.getByRole("alert").textContent(), { timeout: 15_000 })
      .toMatch(/daily AI budget is used up\. Try again in \d+ (h|min|s)/);
    expect(problems.filter((p) => !p.includes("status of 429"))).toEqual([]);
    problems.length = 0;

    expect(stub.unauthorized).toBe(0);
    expect(problems).toEqual([]);
    await context.close();
  });
});
