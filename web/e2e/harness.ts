// Starts the real server binary on a free port of 127.0.0.1 with a temporary data directory,
// and Debian's Chromium through playwright-core (which never downloads a browser of its own).

import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, type BrowserContext, type BrowserContextOptions, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll } from "vitest";

export const PASSWORD = "tangerine-violin-42";
const here = new URL(".", import.meta.url).pathname;
export const ARTIFACTS = join(here, ".artifacts");

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => (typeof addr === "object" && addr ? ok(addr.port) : fail(new Error("no port"))));
    });
  });
}

export interface Server {
  base: string;
  /** The server's data directory (its outbox holds the mails it sent). */
  dataDir: string;
  stop(): Promise<void>;
}

/** `env` adds or overrides SC_* settings (e.g. lifted rate limits for a benchmark). */
export async function startServer(name: string, env: Record<string, string> = {}): Promise<Server> {
  const bin = resolve(process.env.SC_BIN ?? join(here, "../../target/debug/secureconnect"));
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "sc-e2e-"));
  const base = `http://127.0.0.1:${port}`;
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = createWriteStream(join(ARTIFACTS, `${name}-server.log`));
  const child: ChildProcess = spawn(bin, ["serve"], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      SC_DATA_DIR: dataDir,
      SC_LISTEN: `127.0.0.1:${port}`,
      SC_PUBLIC_URL: base,
      SC_LOG_LEVEL: "info",
      // Every browser context signs in from 127.0.0.1.
      SC_LOGIN_RATE_PER_IP_PER_MINUTE: "1000",
      SC_AUTH_RATE_PER_IP_PER_MINUTE: "1000",
      // Working on the app: serve a freshly built web/dist without rebuilding the server.
      ...(process.env.SC_WEB_DIR ? { SC_WEB_DIR: process.env.SC_WEB_DIR } : {}),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}); see ${name}-server.log`);
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("the server did not start within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    dataDir,
    async stop() {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // Root in CI has no user namespace sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** Console errors, uncaught exceptions and CSP violations of every page of a context. */
export function watchProblems(context: BrowserContext, problems: string[]): void {
  context.on("page", (page) => watchPage(page, problems));
  void context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
}

function watchPage(page: Page, problems: string[]): void {
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
}

/** A user made through the JSON API (as another client would), with its access token. */
export async function apiUser(base: string, username: string, displayName: string) {
  const r = await fetch(`${base}/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: `${username}@example.org`, username, password: PASSWORD, display_name: displayName }),
  });
  const body = (await r.json()) as { data: { access_token: string; user: { id: string } } };
  if (r.status !== 201) throw new Error(`register ${username}: ${JSON.stringify(body)}`);
  return { token: body.data.access_token, id: body.data.user.id };
}

export async function apiCall(base: string, token: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as { data: Record<string, unknown> } };
}

/** The RFC 6238 code (HMAC-SHA1, 6 digits, 30 s) of a base32 secret, as an authenticator app shows it. */
export function totpCode(base32: string, at = Date.now()): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of base32.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0xf;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return n.toString().padStart(6, "0");
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * The serious and critical findings of an axe-core scan of the page as it is now (WCAG 2 A/AA
 * rules, colour contrast included). Evaluated through the DevTools protocol, which the page's
 * CSP does not govern, so the app's policy stays as strict as in production.
 */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    type Result = { violations: { id: string; impact?: string; nodes: { target: string[] }[] }[] };
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<Result> } }).axe;
    const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
}

/** The path and query of the first link to `path` in a mail to `to` (waits for the mail queue). */
export async function mailedLink(server: Server, to: string, path: string): Promise<string> {
  const outbox = join(server.dataDir, "outbox");
  const deadline = Date.now() + 15_000;
  for (;;) {
    for (const f of existsSync(outbox) ? readdirSync(outbox).filter((n) => n.endsWith(".eml")) : []) {
      // The body is quoted-printable: undo soft line breaks and =XX escapes first.
      const mail = readFileSync(join(outbox, f), "utf8")
        .replace(/=\r?\n/g, "")
        .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      if (!mail.includes(to)) continue;
      const m = new RegExp(`${path.replace(/[/]/g, "\\/")}\\?token=[A-Za-z0-9_-]+`).exec(mail);
      if (m) return m[0];
    }
    if (Date.now() > deadline) throw new Error(`no mail to ${to} with a link to ${path}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Chromium for calls: a fake camera and microphone (a test pattern and a beep), and the media
 * permission prompt answered "allow" by itself.
 */
export function launchMediaBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-dev-shm-usage",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
    ],
  });
}

/**
 * A spec file's server and browser: `useSuite(name)` at the top of the file starts both before
 * its tests (the env may be computed then, e.g. from a stub started first) and stops both after
 * them. Read `suite.server` and `suite.browser` inside hooks and tests only.
 */
export interface Suite {
  readonly server: Server;
  readonly browser: Browser;
}

export function useSuite(
  name: string,
  options: { env?: Record<string, string> | (() => Promise<Record<string, string>>); media?: boolean } = {},
): Suite {
  const suite: { server?: Server; browser?: Browser } = {};
  beforeAll(async () => {
    const env = typeof options.env === "function" ? await options.env() : (options.env ?? {});
    suite.server = await startServer(name, env);
    suite.browser = await (options.media ? launchMediaBrowser() : launchBrowser());
  });
  afterAll(async () => {
    await suite.browser?.close();
    await suite.server?.stop();
  });
  return {
    get server(): Server {
      if (!suite.server) throw new Error("the suite's server is not started (read it inside a hook or test)");
      return suite.server;
    },
    get browser(): Browser {
      if (!suite.browser) throw new Error("the suite's browser is not started (read it inside a hook or test)");
      return suite.browser;
    },
  };
}

/** A new context on the suite's server whose console errors and CSP violations go to `problems`. */
export async function watchedContext(suite: Suite, problems: string[], options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await suite.browser.newContext({ baseURL: suite.server.base, ...options });
  watchProblems(context, problems);
  return context;
}

/** Fills the app's sign-in form and submits it (no wait: what follows depends on the test). */
export async function submitSignIn(page: Page, identifier: string, password = PASSWORD): Promise<void> {
  await page.getByLabel("Email or username").fill(identifier);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Opens the app, signs in through its form and waits until the session is there ("Sign out"). */
export async function signIn(page: Page, identifier: string): Promise<void> {
  await page.goto("/");
  await submitSignIn(page, identifier);
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

/** Creates an account through the app's own "Create account" screen, signed in afterwards. */
export async function createAccountInApp(page: Page, username: string, displayName: string): Promise<void> {
  await page.goto("/");
  await page.getByRole("link", { name: "Create account" }).click();
  await page.getByLabel("Email").fill(`${username}@example.org`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Display name").fill(displayName);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  // Signed in: the (still empty, so invisible) list is there, and so is "Sign out".
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  await page.getByRole("list", { name: "Conversations" }).waitFor({ state: "attached" });
}

/** A fresh access token for an existing user, signed in through the JSON API. */
export async function apiLogin(base: string, username: string): Promise<string> {
  const r = await fetch(`${base}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  const body = (await r.json()) as { data: { access_token: string } };
  if (r.status !== 200) throw new Error(`login ${username}: ${JSON.stringify(body)}`);
  return body.data.access_token;
}
