// `npm run bench`: the web app's figures of issue 17 (not a timed test; CI does not run it).
// Initial JavaScript (gzip), navigation to the conversation list with a live session, and the
// switch to a conversation of 10,000 messages, measured in headless Chromium on loopback.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, it } from "vitest";
import type { Browser } from "playwright-core";
import { type Server, apiCall, apiUser, launchBrowser, startServer, submitSignIn } from "./harness";

const DIST = join(new URL(".", import.meta.url).pathname, "../dist/assets");
const HISTORY = Number(process.env.SC_BENCH_MESSAGES ?? 10_000);
let server: Server;
let browser: Browser;

beforeAll(async () => {
  // One writer seeds the long history: lift the per-user limits (the per-IP one is off too).
  server = await startServer("bench", {
    SC_MESSAGE_RATE_PER_USER_PER_MINUTE: "1000000",
    SC_API_RATE_PER_USER_PER_MINUTE: "1000000",
    SC_API_RATE_PER_IP_PER_MINUTE: "0",
  });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

it("measures", { timeout: 900_000 }, async () => {
  // What index.html loads at once (chunks imported later, such as the QR encoder, are not).
  const index = readFileSync(join(DIST, "../index.html"), "utf8");
  const js = [...index.matchAll(/src="\/assets\/([^"]+\.js)"/g)].map((m) => m[1]!);
  const gzipKb = js.reduce((n, f) => n + gzipSync(readFileSync(join(DIST, f)), { level: 9 }).length, 0) / 1024;

  const reader = await apiUser(server.base, "reader", "Reader");
  const writer = await apiUser(server.base, "writer", "Writer");
  const small = await apiCall(server.base, reader.token, "POST", "/v1/conversations", {
    kind: "group",
    member_ids: [writer.id],
    title: "Small",
  });
  const big = await apiCall(server.base, reader.token, "POST", "/v1/conversations", {
    kind: "direct",
    member_ids: [writer.id],
  });
  const bigId = big.body.data["id"] as string;
  await apiCall(server.base, writer.token, "POST", `/v1/conversations/${small.body.data["id"]}/messages`, {
    client_message_id: "small-1",
    content: "hello",
  });
  const seedStart = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = next++; i < HISTORY; i = next++) {
        const r = await apiCall(server.base, writer.token, "POST", `/v1/conversations/${bigId}/messages`, {
          client_message_id: `bench-${i}`,
          content: `message number ${i} of the long history`,
        });
        if (r.status !== 201) throw new Error(`seed ${i}: ${r.status}`);
      }
    }),
  );
  const seedSeconds = (Date.now() - seedStart) / 1000;

  const context = await browser.newContext({ baseURL: server.base });
  const page = await context.newPage();
  await page.goto("/");
  await submitSignIn(page, "reader");
  const list = page.getByRole("list", { name: "Conversations" });
  await list.getByRole("listitem", { name: /Writer/ }).waitFor();

  const toList: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = Date.now();
    await page.goto("/");
    await list.getByRole("listitem", { name: /Writer/ }).waitFor();
    toList.push(Date.now() - t);
  }

  const toBig: number[] = [];
  const last = `message number`;
  for (let i = 0; i < 5; i++) {
    await list.getByRole("link", { name: /Small/ }).click();
    await page.getByRole("list", { name: "Messages" }).getByText("hello").waitFor();
    const t = Date.now();
    await list.getByRole("link", { name: /Writer/ }).click();
    await page.getByRole("list", { name: "Messages" }).getByText(last).last().waitFor();
    toBig.push(Date.now() - t);
  }

  const report = [
    `initial JavaScript: ${gzipKb.toFixed(1)} KB gzip (${js.length} file)`,
    `navigation to the conversation list (signed in, reload): median ${median(toList)} ms of ${toList.join(", ")}`,
    `switch to a conversation of ${HISTORY} messages: median ${median(toBig)} ms of ${toBig.join(", ")}`,
    `(seeding ${HISTORY} messages through the API took ${seedSeconds.toFixed(1)} s)`,
  ];
  console.log(report.join("\n"));
  await context.close();
});
