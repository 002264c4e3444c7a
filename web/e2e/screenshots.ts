// `npm run screenshots`: pictures of the main screens for docs/ (not a test; CI does not run it).
// A throwaway server with three people and a short conversation, shot at desktop and phone size
// in the light and the dark scheme.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, it } from "vitest";
import type { Browser } from "playwright-core";
import { PASSWORD, type Server, apiCall, apiUser, launchBrowser, startServer } from "./harness";

const OUT = join(new URL(".", import.meta.url).pathname, "../../docs/screenshots");
let server: Server;
let browser: Browser;

beforeAll(async () => {
  server = await startServer("screenshots");
  browser = await launchBrowser();
  mkdirSync(OUT, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

it("shoots the main screens", async () => {
  const ada = await apiUser(server.base, "ada", "Ada Lovelace");
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
  await say(grace.token, g, 5, "Let's discuss it on Thursday.");

  for (const colorScheme of ["light", "dark"] as const) {
    for (const [size, viewport] of [
      ["desktop", { width: 1100, height: 640 }],
      ["phone", { width: 390, height: 760 }],
    ] as const) {
      const context = await browser.newContext({ baseURL: server.base, viewport, colorScheme, deviceScaleFactor: 1 });
      const page = await context.newPage();
      await page.goto("/");
      if (colorScheme === "light" && size === "desktop") await page.screenshot({ path: join(OUT, "sign-in.png") });
      await page.getByLabel("Email or username").fill("ada");
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      const item = page.getByRole("list", { name: "Conversations" }).getByRole("link", { name: /Grace Hopper/ });
      await item.waitFor();
      if (size === "phone") await page.screenshot({ path: join(OUT, `conversations-${size}-${colorScheme}.png`) });
      await item.click();
      await page.getByRole("list", { name: "Messages" }).getByText("Notes are at").waitFor();
      await page.getByRole("textbox", { name: "Message" }).fill("See you on Thursday");
      await page.screenshot({ path: join(OUT, `conversation-${size}-${colorScheme}.png`) });
      if (colorScheme === "light" && size === "desktop") {
        await page.getByRole("link", { name: "Settings" }).click();
        await page.getByRole("list", { name: "Sessions" }).getByRole("listitem").first().waitFor();
        await page.screenshot({ path: join(OUT, "settings.png") });
      }
      await context.close();
    }
  }
});
