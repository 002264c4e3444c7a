// The signed-in session. The access token lives in this module's memory only; the refresh
// token is an HttpOnly cookie (`/v1/auth/browser/*`) that no script of the page can read.
// Refreshes are serialized across tabs (Web Locks): the server treats a refresh token used
// twice as stolen and ends the session, and two tabs refreshing at once would do just that.

import { ApiFailure, type BrowserSession, type User, api, bearer, failure, http, useTokens } from "./api/client";

export interface Session {
  user: User;
  sessionId: string;
}

let access: string | null = null;
let current: Session | null = null;
// Not a secret: only whether this browser signed in here, so that a visitor who never did is
// not sent to the refresh route (whose 401 every browser logs as a console error).
const HINT = "secureconnect.signed-in";
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let inFlight: Promise<BrowserSession | null> | null = null;
const listeners = new Set<(s: Session | null) => void>();

/** Called with the new session state (null: signed out, or the server ended the session). */
export function onSessionChange(cb: (s: Session | null) => void): () => void {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

function adopt(b: BrowserSession | null): Session | null {
  clearTimeout(refreshTimer);
  access = b?.access_token ?? null;
  const s = b ? { user: b.user, sessionId: b.session_id } : null;
  current = s;
  try {
    if (b) localStorage.setItem(HINT, "1");
    else localStorage.removeItem(HINT);
  } catch {
    // Storage may be off (private mode): the page then always asks the server.
  }
  if (b) {
    // Renew before expiry so requests rarely meet a 401 (at 80 %, at least 5 s ahead).
    const ms = Math.max(5, b.expires_in * 0.8) * 1000;
    refreshTimer = setTimeout(() => void refresh(), ms);
  }
  for (const cb of listeners) cb(s);
  return s;
}

async function withRefreshLock<T>(work: () => Promise<T>): Promise<T> {
  if (navigator.locks) return navigator.locks.request("secureconnect-refresh", work);
  return work();
}

/** Rotates the refresh cookie and answers the new session, or null when there is none. */
async function refresh(): Promise<BrowserSession | null> {
  inFlight ??= withRefreshLock(async () => {
    const r = await http.POST("/v1/auth/browser/refresh", { body: {} });
    if (r.data) return r.data.data;
    if (r.response.status === 401 || r.response.status === 403) return null;
    throw failure(r.response.status, r.error);
  }).finally(() => {
    inFlight = null;
  });
  const b = await inFlight;
  adopt(b);
  return b;
}

useTokens({
  accessToken: () => access,
  refreshed: async () => (await refresh().catch(() => null))?.access_token ?? null,
});

/** On page load: the session of the cookie, if it is still alive. */
export async function restore(): Promise<Session | null> {
  let hinted = true;
  try {
    hinted = localStorage.getItem(HINT) !== null;
  } catch {
    // Unknown: ask the server.
  }
  if (!hinted) return null;
  const b = await refresh();
  return b ? { user: b.user, sessionId: b.session_id } : null;
}

export interface Credentials {
  identifier: string;
  password: string;
  code?: string;
}

export async function signIn(c: Credentials): Promise<Session> {
  const id = c.identifier.trim();
  const who = id.includes("@") ? { email: id } : { username: id };
  const r = await http.POST("/v1/auth/browser/login", {
    body: { ...who, password: c.password, totp_code: c.code || null, device_name: "Web browser" },
  });
  if (!r.data) throw failure(r.response.status, r.error);
  return adopt(r.data.data)!;
}

export interface NewAccount {
  email: string;
  username: string;
  display_name: string;
  password: string;
}

export async function register(a: NewAccount): Promise<Session> {
  const r = await http.POST("/v1/auth/browser/register", { body: { ...a, device_name: "Web browser" } });
  if (!r.data) throw failure(r.response.status, r.error);
  return adopt(r.data.data)!;
}

/** Ends the session on the server (and the cookie), then forgets it here whatever happened. */
export async function signOut(): Promise<void> {
  try {
    await api((headers) => http.POST("/v1/auth/browser/logout", { headers }));
  } catch (e) {
    // An already-ended session is signed out as far as the server is concerned.
    if (!(e instanceof ApiFailure && e.status === 401)) throw e;
  } finally {
    adopt(null);
  }
}

/** The signed-in user changed (profile saved): tell the listeners, the tokens stay. */
export function updateUser(user: User): void {
  if (!current) return;
  current = { ...current, user };
  for (const cb of listeners) cb(current);
}

/** The server already ended the session (its socket closed with 4001/4003): forget it here. */
export function forget(): void {
  adopt(null);
}

/** The current access token, for the realtime ticket (the socket itself takes no bearer). */
export function authHeaders(): { Authorization?: string } {
  return bearer(access);
}
