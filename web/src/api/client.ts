// The one HTTP client of the app, typed from the server's OpenAPI document (schema.d.ts).
// Every call goes through `api()`, which adds the access token (kept in memory only) and, when
// the server says it expired, refreshes it once through the HttpOnly cookie and tries again.

import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type User = Schemas["UserView"];
export type Conversation = Schemas["ConversationView"];
export type Message = Schemas["MessageView"];
export type Member = Schemas["MemberView"];
export type BrowserSession = Schemas["BrowserSessionView"];

export const http = createClient<paths>({
  // Same origin as the page (tests import this module outside a browser: no `location`).
  baseUrl: globalThis.location?.origin ?? "",
  credentials: "same-origin",
});

/** The error envelope's `error` (API.md §1), with the HTTP status. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

interface ErrorEnvelope {
  error?: { code?: string; message?: string; details?: Record<string, unknown> };
}

/** What a failed call or a network error becomes. */
export function failure(status: number, body: unknown): ApiFailure {
  const e = (body as ErrorEnvelope | undefined)?.error;
  if (e?.code) return new ApiFailure(status, e.code, e.message ?? e.code, e.details);
  return new ApiFailure(status, "NETWORK", status ? `the server answered ${status}` : "the server cannot be reached");
}

interface Result<D> {
  data?: { data: D };
  error?: unknown;
  response: Response;
}

/** How `api()` learns the current access token and gets a new one. */
export interface TokenSource {
  accessToken(): string | null;
  /** A fresh access token after a 401, or null when the session is over. */
  refreshed(): Promise<string | null>;
}

let tokens: TokenSource | null = null;
export function useTokens(source: TokenSource | null): void {
  tokens = source;
}

export function bearer(token: string | null): { Authorization?: string } {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * Runs one typed call with the bearer header and answers its `data`, or throws ApiFailure.
 * `call` receives the headers to pass; it is run again once after a successful refresh.
 */
export async function api<D>(call: (headers: { Authorization?: string }) => Promise<Result<D>>): Promise<D> {
  let result: Result<D>;
  try {
    result = await call(bearer(tokens?.accessToken() ?? null));
    if (result.response.status === 401 && tokens) {
      const fresh = await tokens.refreshed();
      if (fresh) result = await call(bearer(fresh));
    }
  } catch (e) {
    if (e instanceof ApiFailure) throw e;
    throw failure(0, undefined);
  }
  if (result.data) return result.data.data;
  throw failure(result.response.status, result.error);
}
