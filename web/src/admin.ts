// The administration screens' logic (API.md §11 and §12 "Admin"): what a refusal means,
// ban durations, quotas in readable units.

import { ApiFailure } from "./api/client";
import { SIZE_UNITS } from "./size";
import { dateTime } from "./format";

/** A sentence for a failed admin request. `gate` is true when it means the whole screen is closed. */
export function adminProblem(e: unknown): { text: string; gate: boolean } {
  if (!(e instanceof ApiFailure)) return { text: "The request failed.", gate: false };
  if (e.status === 403 && e.details?.reason === "2fa_required") {
    return {
      text: "Turn on two-factor authentication (Settings → Two-factor authentication) to use administration.",
      gate: true,
    };
  }
  if (e.status === 403 && e.code === "FORBIDDEN") {
    return { text: "Not allowed: administration is for administrators only.", gate: true };
  }
  if (e.status === 401) return { text: "Your session has ended. Sign in again.", gate: true };
  if (e.status === 409) return { text: `Refused: ${e.message}`, gate: false };
  if (e.code === "NETWORK") return { text: "The server cannot be reached.", gate: false };
  return { text: e.message, gate: false };
}

export const BAN_DURATIONS = [
  { value: "1h", label: "1 hour", seconds: 3600 },
  { value: "1d", label: "1 day", seconds: 86400 },
  { value: "7d", label: "7 days", seconds: 7 * 86400 },
  { value: "30d", label: "30 days", seconds: 30 * 86400 },
  { value: "forever", label: "Until unbanned", seconds: null },
] as const;

export type BanDuration = (typeof BAN_DURATIONS)[number]["value"];

/** The `until` of a ban request: an RFC 3339 time, or null for "until unbanned". */
export function banUntil(duration: BanDuration, now = new Date()): string | null {
  const d = BAN_DURATIONS.find((x) => x.value === duration);
  if (!d || d.seconds === null) return null;
  return new Date(now.getTime() + d.seconds * 1000).toISOString();
}

const UNITS = SIZE_UNITS;
export type QuotaUnit = keyof typeof UNITS;

/** Bytes of a quota typed as a number of MB or GB; null when it is not a non-negative number. */
export function parseQuota(text: string, unit: QuotaUnit): number | null {
  const t = text.trim().replace(",", ".");
  if (!/^\d+(\.\d+)?$/.test(t)) return null;
  const n = Math.round(Number(t) * UNITS[unit]);
  return Number.isSafeInteger(n) ? n : null;
}

/** How a user's state reads in the list: "Banned until …", "Banned", or "Active". */
export function banState(u: { banned: boolean; banned_until?: string | null }, locale?: string): string {
  if (!u.banned) return "Active";
  if (!u.banned_until) return "Banned until unbanned";
  return `Banned until ${dateTime(u.banned_until, locale)}`;
}

/** The RFC 3339 `since` of a `datetime-local` input's value (the reader's local time), or undefined. */
export function sinceParam(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
