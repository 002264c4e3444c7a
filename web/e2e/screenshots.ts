// `npm run screenshots`: pictures of the main screens for docs/ (not a test; CI does not run it).
// A throwaway server (with a stub AI provider) and three people: the conversation, the drive (a
// folder of files with the details panel), notifications, the assistant while it streams, the
// administration and a video call between two browsers with fake devices; desktop light, and
// the conversation and the drive at a phone's width in the dark scheme too.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import {
  PASSWORD,
  type Server,
  apiCall,
  apiUser,
  launchBrowser,
  launchMediaBrowser,
  startServer,
  submitSignIn,
  signIn,
} from "./harness";
import { type AiStub, aiEnv, createAdmin, startAiStub } from "./fixtures";

const OUT = join(new URL(".", import.meta.url).pathname, "../../docs/screenshots");
const DESKTOP = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 760 };
const REPLY =
  "Here is a plan for Thursday: first, review the loop for the Bernoulli numbers on the new cards; " +
  "then compare Note G with the engine's store and mill; last, agree on what the next punch run " +
  "should compute, and who checks its output.";

let server: Server;
let browser: Browser;
let stub: AiStub;

beforeAll(async () => {
  stub = await startAiStub(REPLY, 120);
  server = await startServer("screenshots", { ...aiEnv(stub), SC_ADMIN_REQUIRE_2FA: "false" });
  browser = await launchBrowser();
  mkdirSync(OUT, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await stub?.close();
});

async function login(username: string): Promise<{ token: string; id: string }> {
  const r = await fetch(`${server.base}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  const token = ((await r.json()) as { data: { access_token: string } }).data.access_token;
  const me = await apiCall(server.base, token, "GET", "/v1/users/me");
  return { token, id: me.body.data["id"] as string };
}

async function upload(token: string, name: string, text: string, parentId: string | null): Promise<void> {
  const bytes = Buffer.from(text);
  const t = await apiCall(server.base, token, "POST", "/v1/files/uploads", {
    name,
    size: bytes.length,
    content_type: "text/plain",
    parent_id: parentId,
  });
  const put = await fetch(t.body.data["upload_url"] as string, { method: "PUT", headers: t.body.data["headers"] as Record<string, string>, body: bytes });
  if (put.status !== 200) throw new Error(`upload ${name}: ${put.status}`);
  await apiCall(server.base, token, "POST", `/v1/files/${t.body.data["file_id"] as string}/complete`);
}

async function signedIn(
  b: Browser,
  username: string,
  viewport: { width: number; height: number },
  colorScheme: "light" | "dark",
  permissions: string[] = [],
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await b.newContext({ baseURL: server.base, viewport, colorScheme, deviceScaleFactor: 1, permissions });
  const page = await context.newPage();
  await signIn(page, username);
  return { context, page };
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(OUT, `${name}.png`) });

it("shoots the main screens", { timeout: 240_000 }, async () => {
  await createAdmin(server, "ada", "Ada Lovelace");
  const ada = await login("ada");
  const grace = await apiUser(server.base, "grace", "Grace Hopper");
  const alan = await apiUser(server.base, "alan", "Alan Turing");
  const direct = await apiCall(server.base, ada.token, "POST", "/v1/conversations", { kind: "direct", member_ids: [grace.id] });
  const group = await apiCall(server.base, ada.token, "POST", "/v1/conversations", {
    kind: "group",
    member_ids: [grace.id, alan.id],
    title: "Analytical Engine",
  });
  const say = (token: string, conv: unknown, i: number, content: string) =>
    apiCall(server.base, token, "POST", `/v1/conversations/${conv}/messages`, { client_message_id: `shot-${i}`, content });
  const d = direct.body.data["id"];
  const g = group.body.data["id"];
  await say(grace.token, d, 1, "Ada, did the new cards arrive?");
  await say(ada.token, d, 2, "They did! The loop for the Bernoulli numbers runs now.");
  await say(grace.token, d, 3, "Wonderful. Notes are at https://example.org/notes-g");
  await say(alan.token, g, 4, "Could a machine think, given enough cards?");
  await say(grace.token, g, 5, "Let's discuss it on Thursday, @ada?");
  await say(alan.token, g, 6, "@ada the new punch run is ready for review.");

  // The drive: a folder with a few files, and a file at the top.
  const folder = await apiCall(server.base, ada.token, "POST", "/v1/folders", { name: "Engine notes", parent_id: null });
  const folderId = folder.body.data["id"] as string;
  await apiCall(server.base, ada.token, "POST", "/v1/folders", { name: "Letters", parent_id: folderId });
  await upload(ada.token, "bernoulli-numbers.txt", "B1 = -1/2\nB2 = 1/6\nB4 = -1/30\n".repeat(40), folderId);
  await upload(ada.token, "note-g.txt", "Note G: the diagram of the computation.\n".repeat(200), folderId);
  await upload(ada.token, "store-and-mill.txt", "The store holds the numbers; the mill works on them.\n".repeat(20), folderId);
  await upload(ada.token, "punch-cards.csv.txt", "card,operation\n1,multiply\n2,divide\n".repeat(60), folderId);
  await upload(ada.token, "reading-list.txt", "Menabrea, Sketch of the Analytical Engine\n", null);
  await apiCall(server.base, ada.token, "PATCH", "/v1/ai/settings", { enabled: true });

  for (const colorScheme of ["light", "dark"] as const) {
    for (const [size, viewport] of [
      ["desktop", DESKTOP],
      ["phone", PHONE],
    ] as const) {
      const { context, page } = await signedIn(browser, "ada", viewport, colorScheme);
      if (colorScheme === "light" && size === "desktop") {
        await page.getByRole("button", { name: "Sign out" }).click();
        await page.getByRole("button", { name: "Sign in" }).waitFor();
        await shot(page, "sign-in");
        await submitSignIn(page, "ada");
      }
      const item = page.getByRole("list", { name: "Conversations" }).getByRole("link", { name: /Grace Hopper/ });
      await item.waitFor();
      if (size === "phone") await shot(page, `conversations-${size}-${colorScheme}`);
      await item.click();
      await page.getByRole("list", { name: "Messages" }).getByText("Notes are at").waitFor();
      await page.getByRole("textbox", { name: "Message" }).fill("See you on Thursday");
      await shot(page, `conversation-${size}-${colorScheme}`);

      const main = page.getByRole("navigation", { name: "Main" });
      if ((colorScheme === "light" && size === "desktop") || (colorScheme === "dark" && size === "phone")) {
        await main.getByRole("link", { name: "Drive" }).click();
        const files = page.getByRole("table", { name: "Files" });
        await files.getByRole("link", { name: "Engine notes" }).click();
        await files.getByRole("row").filter({ hasText: "note-g.txt" }).waitFor();
        if (size === "desktop") {
          await files.getByRole("button", { name: "Details of note-g.txt" }).click();
          await page.getByRole("complementary", { name: "note-g.txt" }).waitFor();
        }
        await page.mouse.move(0, viewport.height - 1);
        await shot(page, `drive-${size}-${colorScheme}`);
      }

      if (colorScheme === "light" && size === "desktop") {
        await main.getByRole("link", { name: /^Notifications/ }).click();
        await page.getByRole("list", { name: "Notifications" }).getByRole("link").first().waitFor();
        await shot(page, "notifications");

        await main.getByRole("link", { name: "Admin" }).click();
        await page.getByRole("list", { name: "Users" }).getByRole("listitem").first().waitFor();
        await page.getByRole("definition").first().waitFor();
        await shot(page, "admin");

        await page.getByRole("group", { name: "Account" }).getByRole("link", { name: "Settings" }).click();
        await page.getByRole("list", { name: "Sessions" }).getByRole("listitem").first().waitFor();
        await shot(page, "settings");

        // The assistant while its answer streams in.
        await main.getByRole("link", { name: "Assistant" }).click();
        await page.getByRole("textbox", { name: "Ask the assistant" }).fill("Plan our Thursday meeting about the engine");
        await page.getByRole("button", { name: "Ask" }).click();
        const answer = page.getByRole("list", { name: "Assistant conversation" }).getByRole("listitem").last();
        await answer.getByText(/compare Note G/).waitFor({ timeout: 20_000 });
        await page.mouse.move(0, viewport.height - 1);
        await shot(page, "assistant");
      }
      await context.close();
    }
  }

  // A video call between two browsers with fake cameras.
  const media = await launchMediaBrowser();
  try {
    const a = await signedIn(media, "ada", DESKTOP, "light", ["camera", "microphone"]);
    const b = await signedIn(media, "grace", DESKTOP, "light", ["camera", "microphone"]);
    await a.page.getByRole("list", { name: "Conversations" }).getByRole("link", { name: /Grace Hopper/ }).click();
    await a.page.getByRole("button", { name: "Video call", exact: true }).click();
    const ring = b.page.getByRole("alertdialog", { name: "Incoming video call" });
    await ring.getByRole("button", { name: "Accept" }).click();
    const tile = a.page.getByRole("list", { name: "Participants" }).getByRole("listitem", { name: "Grace Hopper" });
    await tile.getByText("Connected").waitFor({ timeout: 30_000 });
    await a.page
      .waitForFunction(() => Array.from(document.querySelectorAll("video")).every((v) => v.videoWidth > 0 && v.readyState >= 2), undefined, {
        timeout: 15_000,
      })
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1000));
    await a.page.mouse.move(0, DESKTOP.height - 1);
    await shot(a.page, "call");
    await a.context.close();
    await b.context.close();
  } finally {
    await media.close();
  }
});
