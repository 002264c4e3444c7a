// What a failure means to a person, as one sentence for a role="alert" line.

import { ApiFailure } from "./api/client";

/** The server's message for a refused request (its `{error:{message}}`), or `otherwise`. */
export function apiErrorText(e: unknown, otherwise: string): string {
  return e instanceof ApiFailure ? e.message : otherwise;
}

/**
 * The same, and also the message of the app's own checks made along the way (an `Error` thrown
 * on purpose, e.g. "No user is called …"), for flows that throw those.
 */
export function errorText(e: unknown, otherwise: string): string {
  return e instanceof ApiFailure ? e.message : e instanceof Error ? e.message : otherwise;
}
