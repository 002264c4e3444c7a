// Signing in with a second factor: the "Code" field appears only when the server asks for it,
// and takes a TOTP code or a recovery code.

import { describe, expect, it } from "vitest";

import {
  PASSWORD,
  accessibilityProblems,
  apiCall,
  apiUser,
  mailedLink,
  totpCode,
  useSuite,
  submitSignIn,
  signIn,
  watchedContext,
} from "./harness";

const suite = useSuite("auth");

describe("sign in with two-factor authentication", () => {
  it("asks for the Code after the password, takes a recovery code; settings end sessions", async () => {
    const user = await apiUser(suite.server.base, "carol", "Carol Danvers");
    const setup = await apiCall(suite.server.base, user.token, "POST", "/v1/auth/2fa/setup");
    const secret = setup.body.data["secret"] as string;
    const enabled = await apiCall(suite.server.base, user.token, "POST", "/v1/auth/2fa/enable", { code: totpCode(secret) });
    expect(enabled.status).toBe(200);
    const recovery = (enabled.body.data["recovery_codes"] as string[])[0]!;

    const problems: string[] = [];
    const context = await watchedContext(suite, problems);
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

    // Settings: the sessions are listed; ending the other one (the API client's) kills its
    // token on the server; the display name changes; no serious accessibility finding.
    await page.getByRole("link", { name: "Settings" }).click();
    const sessions = page.getByRole("list", { name: "Sessions" });
    await expect.poll(() => sessions.getByRole("listitem").count()).toBe(2);
    expect(await accessibilityProblems(page)).toEqual([]);
    expect((await apiCall(suite.server.base, user.token, "GET", "/v1/users/me")).status).toBe(200);
    await sessions.getByRole("button", { name: /^End session/ }).click();
    await expect.poll(() => sessions.getByRole("listitem").count()).toBe(1);
    expect((await apiCall(suite.server.base, user.token, "GET", "/v1/users/me")).status).toBe(401);
    await page.getByLabel("Display name").fill("Captain Marvel");
    await page.getByRole("button", { name: "Save profile" }).click();
    await page.locator(".topbar").getByText("Captain Marvel").waitFor();

    // Sign out everywhere ends this session too.
    await page.getByRole("button", { name: "Sign out everywhere" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();

    // The only thing logged was the browser noting the 401 TOTP_REQUIRED answer itself.
    expect(problems.filter((p) => !p.includes("status of 401"))).toEqual([]);
    await context.close();
  });

  it("verifies an email address and resets a forgotten password from the mails' links", async () => {
    const dave = await apiUser(suite.server.base, "dave", "Dave Bowman");
    const problems: string[] = [];
    const context = await watchedContext(suite, problems);
    const page = await context.newPage();

    await page.goto(await mailedLink(suite.server, "dave@example.org", "/verify-email"));
    await page.getByText("Your email address is verified.").waitFor();
    expect(page.url()).not.toContain("token");
    const me = await apiCall(suite.server.base, dave.token, "GET", "/v1/users/me");
    expect(me.body.data["email_verified"]).toBe(true);

    await page.getByRole("link", { name: "Go to SecureConnect" }).click();
    await page.getByRole("link", { name: "Forgot your password?" }).click();
    await page.getByLabel("Email").fill("dave@example.org");
    await page.getByRole("button", { name: "Send reset link" }).click();
    await page.getByText("a mail with a link is on its way").waitFor();
    await page.goto(await mailedLink(suite.server, "dave@example.org", "/reset-password"));
    await expect.poll(() => page.url()).not.toContain("token");
    await page.getByLabel("New password").fill("open-the-pod-bay-doors-9");
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.getByText("Your password is changed").waitFor();
    // Every session ended, the API client's too; the new password signs in.
    expect((await apiCall(suite.server.base, dave.token, "GET", "/v1/users/me")).status).toBe(401);
    await page.getByRole("link", { name: "Sign in" }).click();
    await submitSignIn(page, "dave", "open-the-pod-bay-doors-9");
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    expect(problems).toEqual([]);
    await context.close();
  });

  it("sets up two-factor authentication from Settings with the QR code's key", async () => {
    await apiUser(suite.server.base, "frank", "Frank Poole");
    const problems: string[] = [];
    const context = await watchedContext(suite, problems);
    const page = await context.newPage();
    await page.goto("/");
    await submitSignIn(page, "frank");
    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByRole("button", { name: "Set up two-factor authentication" }).click();
    await page.getByRole("img", { name: "QR code of the two-factor key" }).waitFor();
    expect(await accessibilityProblems(page)).toEqual([]);
    const key = await page.locator("code.secret").innerText();
    await page.getByLabel("Code", { exact: true }).fill(totpCode(key));
    await page.getByRole("button", { name: "Turn on two-factor authentication" }).click();
    const codes = page.getByRole("list", { name: "Recovery codes" }).getByRole("listitem");
    await expect.poll(() => codes.count()).toBe(10);
    const recovery = await codes.first().innerText();

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await submitSignIn(page, "frank");
    await page.getByLabel("Code").fill(recovery);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out", exact: true }).waitFor();
    expect(problems.filter((p) => !p.includes("status of 401"))).toEqual([]);
    await context.close();
  });

  it("says when the server cannot be reached instead of asking a signed-in person to sign in", async () => {
    await apiUser(suite.server.base, "hal", "HAL Nine");
    // Not watched for console errors: the failed request is the point here.
    const context = await suite.browser.newContext({ baseURL: suite.server.base });
    const page = await context.newPage();
    await signIn(page, "hal");

    await page.route("**/v1/auth/browser/refresh", (r) => r.abort("connectionrefused"));
    await page.reload();
    await page.getByText("The server cannot be reached.").waitFor();
    expect(await page.getByRole("button", { name: "Sign in" }).count()).toBe(0);
    await page.unroute("**/v1/auth/browser/refresh");
    await page.getByRole("button", { name: "Try again" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await context.close();
  });
});
