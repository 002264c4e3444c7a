import { describe, expect, it } from "vitest";
import { ApiFailure } from "./api/client";
import { adminProblem, banState, banUntil, parseQuota, sinceParam } from "./admin";
import { aiProblem, waitText } from "./ai";

describe("adminProblem", () => {
  it("tells an admin without 2FA to turn it on, and closes the screen", () => {
    const p = adminProblem(new ApiFailure(403, "FORBIDDEN", "two-factor authentication required", { reason: "2fa_required" }));
    expect(p.gate).toBe(true);
    expect(p.text).toMatch(/turn on two-factor authentication/i);
  });
  it("says not allowed to a non-admin", () => {
    const p = adminProblem(new ApiFailure(403, "FORBIDDEN", "administrators only"));
    expect(p).toEqual({ text: expect.stringMatching(/not allowed/i), gate: true });
  });
  it("keeps the screen open for a refused action, and shows the server's message", () => {
    expect(adminProblem(new ApiFailure(409, "CONFLICT", "you cannot ban yourself"))).toEqual({
      text: "Refused: you cannot ban yourself",
      gate: false,
    });
    expect(adminProblem(new ApiFailure(400, "VALIDATION_ERROR", "reason is required")).text).toBe("reason is required");
  });
});

describe("ban and quota helpers", () => {
  const now = new Date("2026-12-04T10:00:00.000Z");
  it("turns a duration into an RFC 3339 until, or null for until unbanned", () => {
    expect(banUntil("1h", now)).toBe("2026-12-04T11:00:00.000Z");
    expect(banUntil("7d", now)).toBe("2026-12-11T10:00:00.000Z");
    expect(banUntil("forever", now)).toBeNull();
  });
  it("parses quotas in MB/GB and refuses nonsense", () => {
    expect(parseQuota("1.5", "GB")).toBe(1.5 * 1024 ** 3);
    expect(parseQuota(" 250 ", "MB")).toBe(250 * 1024 ** 2);
    expect(parseQuota("2,5", "MB")).toBe(2.5 * 1024 ** 2);
    expect(parseQuota("-1", "MB")).toBeNull();
    expect(parseQuota("1e3", "MB")).toBeNull();
    expect(parseQuota("", "GB")).toBeNull();
  });
  it("describes the ban state", () => {
    expect(banState({ banned: false })).toBe("Active");
    expect(banState({ banned: true, banned_until: null })).toBe("Banned until unbanned");
    expect(banState({ banned: true, banned_until: "2026-12-11T10:00:00.000Z" })).toMatch(/^Banned until .*2026/);
  });
  it("turns a local date-time into since", () => {
    expect(sinceParam("")).toBeUndefined();
    expect(sinceParam("garbage")).toBeUndefined();
    expect(sinceParam("2026-12-04T10:00")).toBe(new Date("2026-12-04T10:00").toISOString());
  });
});

describe("aiProblem", () => {
  it("shows the wait of a spent budget", () => {
    const e = new ApiFailure(429, "RATE_LIMITED", "daily AI budget used up", { retry_after_seconds: 3 * 3600 + 61 });
    expect(aiProblem(e)).toBe("Your daily AI budget is used up. Try again in 3 h 2 min.");
  });
  it("explains consent and a provider that is down", () => {
    expect(aiProblem(new ApiFailure(403, "FORBIDDEN", "AI helpers are off for this account"))).toMatch(/opt-in/);
    expect(aiProblem(new ApiFailure(503, "SERVICE_UNAVAILABLE", "no AI provider is configured"))).toBe(
      "The AI service is unavailable right now: no AI provider is configured",
    );
  });
  it("formats waits", () => {
    expect(waitText(20)).toBe("20 s");
    expect(waitText(61)).toBe("2 min");
    expect(waitText(3600)).toBe("1 h");
    expect(waitText(7199)).toBe("2 h");
  });
});
