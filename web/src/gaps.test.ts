import { describe, expect, it } from "vitest";
import {
  canManage,
  canRemove,
  isOwner,
  parseHttpsUrl,
  parseRetention,
  parseUsernames,
  readers,
  roleChoices,
  scheduleTime,
  seenLine,
  toLocalInput,
  upcoming,
} from "./gaps";

describe("group permissions", () => {
  it("lets owner and admin manage a group, never a direct conversation", () => {
    expect(canManage("group", "owner")).toBe(true);
    expect(canManage("group", "admin")).toBe(true);
    expect(canManage("group", "member")).toBe(false);
    expect(canManage("direct", "owner")).toBe(false);
    expect(isOwner("group", "owner")).toBe(true);
    expect(isOwner("group", "admin")).toBe(false);
  });
  it("removes anyone but the owner and oneself, for owner/admin only", () => {
    expect(canRemove("admin", "me", { user_id: "b", role: "member" })).toBe(true);
    expect(canRemove("admin", "me", { user_id: "o", role: "owner" })).toBe(false);
    expect(canRemove("owner", "me", { user_id: "me", role: "owner" })).toBe(false);
    expect(canRemove("member", "me", { user_id: "b", role: "member" })).toBe(false);
  });
  it("offers roles only to the owner, for others than the owner", () => {
    expect(roleChoices("owner", "me", { user_id: "b", role: "member" })).toEqual(["member", "admin", "owner"]);
    expect(roleChoices("admin", "me", { user_id: "b", role: "member" })).toEqual([]);
    expect(roleChoices("owner", "me", { user_id: "me", role: "owner" })).toEqual([]);
  });
});

describe("form fields", () => {
  it("parses usernames", () => {
    expect(parseUsernames(" @Alice, bob  carol,,alice ")).toEqual(["alice", "bob", "carol"]);
    expect(parseUsernames("  ")).toEqual([]);
  });
  it("parses retention", () => {
    expect(parseRetention("")).toEqual({ ok: true, days: null });
    expect(parseRetention(" 30 ")).toEqual({ ok: true, days: 30 });
    expect(parseRetention("0").ok).toBe(false);
    expect(parseRetention("1.5").ok).toBe(false);
    expect(parseRetention("-3").ok).toBe(false);
  });
  it("accepts only https avatar links", () => {
    expect(parseHttpsUrl("")).toEqual({ ok: true, url: null });
    expect(parseHttpsUrl("https://example.org/a.png")).toEqual({ ok: true, url: "https://example.org/a.png" });
    expect(parseHttpsUrl("http://example.org/a.png").ok).toBe(false);
    expect(parseHttpsUrl("javascript:alert(1)").ok).toBe(false);
    expect(parseHttpsUrl("not a url").ok).toBe(false);
  });
});

describe("scheduled calls", () => {
  const now = new Date(2026, 5, 1, 12, 0).getTime();
  it("round-trips a local time and refuses the past and more than a year ahead", () => {
    const v = toLocalInput(new Date(2026, 5, 1, 13, 5));
    expect(v).toBe("2026-06-01T13:05");
    const r = scheduleTime(v, now);
    expect(r).toEqual({ ok: true, iso: new Date(2026, 5, 1, 13, 5).toISOString() });
    expect(scheduleTime("2026-06-01T11:00", now).ok).toBe(false);
    expect(scheduleTime("2027-07-01T11:00", now).ok).toBe(false);
    expect(scheduleTime("", now).ok).toBe(false);
  });
  it("keeps upcoming, not cancelled calls, soonest first", () => {
    const at = (h: number) => new Date(now + h * 3600_000).toISOString();
    const list = upcoming(
      [
        { id: "late", cancelled: false, starts_at: at(5) },
        { id: "gone", cancelled: true, starts_at: at(1) },
        { id: "old", cancelled: false, starts_at: at(-3) },
        { id: "soon", cancelled: false, starts_at: at(1) },
      ],
      now,
    );
    expect(list.map((c) => c.id)).toEqual(["soon", "late"]);
  });
});

describe("seen by", () => {
  it("lists who read up to a message, not its sender", () => {
    const r = [
      { user_id: "me", read_seq: 9 },
      { user_id: "b", read_seq: 9 },
      { user_id: "c", read_seq: 4 },
    ];
    expect(readers(r, 9, "me")).toEqual(["b"]);
    expect(readers(r, 4, "me")).toEqual(["b", "c"]);
  });
  it("says it in words", () => {
    expect(seenLine([])).toBe("");
    expect(seenLine(["Bob"])).toBe("Seen by Bob");
    expect(seenLine(["Bob", "Carol"])).toBe("Seen by Bob and Carol");
    expect(seenLine(["Bob", "Carol", "Dan"])).toBe("Seen by Bob, Carol and 1 other");
    expect(seenLine(["Bob", "Carol", "Dan", "Eve"])).toBe("Seen by Bob, Carol and 2 others");
  });
});

describe("call quality and presence text", () => {
  it("summarizes a quality sample set", async () => {
    const { qualityLines } = await import("./gaps");
    const s = (mean: number, p95: number) => ({ mean, p95 });
    expect(qualityLines({ rtt_ms: s(42.4, 80), jitter_ms: s(3.14, 5), packet_loss: s(0.005, 0.01), bitrate_kbps: s(1200, 1500), samples: 12 })).toBe(
      "round trip 42 ms (p95 80), jitter 3.1 ms, loss 0.5 %, 1200 kbps, 12 samples",
    );
    expect(qualityLines({ rtt_ms: s(0, 0), jitter_ms: s(0, 0), packet_loss: s(0, 0), bitrate_kbps: s(0, 0), samples: 1 })).toContain("1 sample");
  });
  it("says online, away or offline with when last seen", async () => {
    const { presenceLabel } = await import("./gaps");
    const ago = (iso: string) => `at ${iso}`;
    expect(presenceLabel(undefined, ago)).toBe("");
    expect(presenceLabel({ status: "online" }, ago)).toBe("Online");
    expect(presenceLabel({ status: "away" }, ago)).toBe("Away");
    expect(presenceLabel({ status: "offline", last_seen_at: "X" }, ago)).toBe("Offline, last seen at X");
    expect(presenceLabel({ status: "offline", last_seen_at: null }, ago)).toBe("Offline");
  });
});
