// The top bar from a phone's 320 px to a desktop, light and dark, for an administrator on a
// server with an assistant (the fullest bar: seven controls): one row, nothing outside the
// screen or overlapping, every control named as before ("Conversations", "Drive",
// "Notifications…", "Assistant", "Admin" in the "Main" navigation; "Settings", "Sign out" in the
// "Account" group), reachable with Tab in that order with a visible focus ring, and no serious
// axe finding (colour contrast included).

import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import {
  ARTIFACTS,
  PASSWORD,
  accessibilityProblems,
  apiCall,
  apiUser,
  useSuite,
  watchedContext,
  submitSignIn,
} from "./harness";
import { type AiStub, aiEnv, createAdmin, startAiStub } from "./fixtures";

let stub: AiStub;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];

const suite = useSuite("topbar", {
  env: async () => {
    stub = await startAiStub("Hello.");
    return { ...aiEnv(stub), SC_ADMIN_REQUIRE_2FA: "false" };
  },
});

afterAll(async () => {
  await stub?.close();
});

const NAV = ["Conversations", "Drive", "Notifications", "Assistant", "Admin"];

describe("top bar", () => {
  it("names its controls, in a Main navigation and an Account group", async () => {
    await createAdmin(suite.server, "root", "Rosalind Franklin-Oppenheimer");
    const friend = await apiUser(suite.server.base, "friend", "Friend");
    context = await watchedContext(suite, problems);
    page = await context.newPage();
    await page.goto("/");
    await submitSignIn(page, "root");
    const main = page.getByRole("navigation", { name: "Main" });
    await main.getByRole("link", { name: "Assistant" }).waitFor();
    expect(await main.getByRole("link").allInnerTexts()).toHaveLength(5);
    for (const name of NAV) expect(await main.getByRole("link", { name: new RegExp(`^${name}`) }).count(), name).toBe(1);
    const account = page.getByRole("group", { name: "Account" });
    await account.getByRole("link", { name: "Settings" }).waitFor();
    await account.getByRole("button", { name: "Sign out" }).waitFor();
    await page.getByRole("banner").getByText("Rosalind Franklin-Oppenheimer").waitFor();
    // A direct message for the badge.
    const login = await fetch(`${suite.server.base}/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "root", password: PASSWORD }),
    });
    const token = ((await login.json()) as { data: { access_token: string } }).data.access_token;
    const me = await apiCall(suite.server.base, token, "GET", "/v1/users/me");
    const conv = await apiCall(suite.server.base, friend.token, "POST", "/v1/conversations", { kind: "direct", member_ids: [me.body.data["id"]] });
    await apiCall(suite.server.base, friend.token, "POST", `/v1/conversations/${conv.body.data["id"] as string}/messages`, {
      client_message_id: "m1",
      content: "Hello root",
    });
    await main.getByRole("link", { name: /^Notifications 1 unread$/ }).waitFor();
    await main.getByRole("link", { name: "Drive" }).click();
    await page.waitForURL(/\/drive$/);
    expect(await main.getByRole("link", { name: "Drive" }).getAttribute("aria-current")).toBe("page");
    await main.getByRole("link", { name: "Conversations" }).click();
    await page.waitForURL(/\/$/);
  });

  for (const colorScheme of ["light", "dark"] as const) {
    for (const width of [320, 375, 390, 640, 768, 1024, 1280, 1440]) {
      it(`fits one row at ${width} px, ${colorScheme}`, async () => {
        await page.setViewportSize({ width, height: 700 });
        await page.emulateMedia({ colorScheme });
        const bar = page.getByRole("banner");
        const box = await bar.boundingBox();
        expect(box).not.toBeNull();
        // One row: the bar is as tall as its tallest control plus padding.
        expect(box!.height, "bar height").toBeLessThanOrEqual(56);
        expect(await page.evaluate(() => document.documentElement.scrollWidth), "page width").toBeLessThanOrEqual(width);
        const controls = bar.locator("a, button");
        const boxes = [];
        for (let i = 0; i < (await controls.count()); i++) {
          const b = await controls.nth(i).boundingBox();
          expect(b, `control ${i}`).not.toBeNull();
          expect(b!.x, `control ${i} left`).toBeGreaterThanOrEqual(0);
          expect(b!.x + b!.width, `control ${i} right`).toBeLessThanOrEqual(width);
          // Big enough to hit (WCAG 2.5.8 asks 24 px).
          expect(Math.min(b!.width, b!.height), `control ${i} size`).toBeGreaterThanOrEqual(32);
          boxes.push(b!);
        }
        expect(boxes).toHaveLength(7);
        boxes.sort((a, b) => a.x - b.x);
        for (let i = 1; i < boxes.length; i++) expect(boxes[i]!.x, "no overlap").toBeGreaterThanOrEqual(boxes[i - 1]!.x + boxes[i - 1]!.width - 0.5);
        await page.screenshot({ path: join(ARTIFACTS, `topbar-${width}-${colorScheme}.png`), clip: { x: 0, y: 0, width, height: 80 } });
        expect(await accessibilityProblems(page), `${width} ${colorScheme}`).toEqual([]);
      });
    }
  }

  it("is reachable with Tab, in order, with a visible focus ring", async () => {
    for (const width of [360, 1280]) {
      await page.setViewportSize({ width, height: 700 });
      await page.goto("/");
      await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Assistant" }).waitFor();
      const names: string[] = [];
      for (let i = 0; i < 7; i++) {
        await page.keyboard.press("Tab");
        const focused = await page.evaluate(() => {
          const el = document.activeElement as HTMLElement;
          const cs = getComputedStyle(el);
          return { text: el.textContent?.replace(/\s+/g, " ").trim() ?? "", outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth) };
        });
        expect(focused.outline, focused.text).toBe("solid");
        expect(focused.width, focused.text).toBeGreaterThanOrEqual(2);
        names.push(focused.text);
      }
      expect(names.map((n) => n.replace(/ \d+ unread$/, ""))).toEqual([...NAV, "Settings", "Sign out"]);
    }
    // Enter on a link opens its page.
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/settings$/);
  });

  it("logged no console error and no CSP violation", () => {
    expect(problems).toEqual([]);
  });
});
