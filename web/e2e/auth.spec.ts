// Signing in with a second factor: the "Code" field appears only when the server asks for it,
// and takes a TOTP code or a recovery code.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { PASSWORD, type Server, apiCall, apiUser, launchBrowser, startServer, totpCode, watchProblems } from "./harness";

let server: Server;
let browser: Browser;

beforeAll(async () => {
  server = await startServer("auth");
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe("sign in with two-factor authentication", () => {
  it("asks for the Code after the password and accepts a recovery code", async () => {
    const user = await apiUser(server.base, "carol", "Carol Danvers");
    const setup = await apiCall(server.base, user.token, "POST", "/v1/auth/2fa/setup");
    const secret = setup.body.data["secret"] as string;
    const enabled = await apiCall(server.base, user.token, "POST", "/v1/auth/2fa/enable", { code: totpCode(secret) });
    expect(enabled.status).toBe(200);
    const recovery = (enabled.body.data["recovery_codes"] as string[])[0]!;

    const context = await browser.newContext({ baseURL: server.base });
    const problems: string[] = [];
    watchProblems(context, problems);
    const page = await context.newPage();
    await page.goto("/");
    await page.getByLabel("Email or username").fill("carol@example.org");
    await page.getByLabel("Password").fill(PASSWORD);
    expect(await page.getByLabel("Code").count()).toBe(0);
    await page.getByRole("button", { name: "Sign in" }).click();

    const code = page.getByLabel("Code");
    await code.waitFor();
    await code.fill(recovery);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await expect.poll(() => page.getByText("Carol Danvers").count()).toBeGreaterThan(0);

    // The only thing logged was the browser noting the 401 TOTP_REQUIRED answer itself.
    expect(problems.filter((p) => !p.includes("status of 401"))).toEqual([]);
    await context.close();
  });
});
