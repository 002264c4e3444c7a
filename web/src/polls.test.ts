import { describe, expect, it } from "vitest";
import { isClosed, percent, pollOfMessage, pollRequest, readPoll } from "./polls";

describe("polls", () => {
  const draft = { question: " Lunch? ", options: ["Pizza", " ", "Sushi "], multiple: false, anonymous: true, closesAt: "" };

  it("builds the request from the form", () => {
    expect(pollRequest(draft)).toEqual({
      ok: true,
      content: "Lunch?",
      poll: { options: ["Pizza", "Sushi"], multiple: false, anonymous: true },
    });
    expect(pollRequest({ ...draft, options: ["one"] }).ok).toBe(false);
    expect(pollRequest({ ...draft, question: "" }).ok).toBe(false);
    expect(pollRequest({ ...draft, options: ["a", "A"] }).ok).toBe(false);
    expect(pollRequest({ ...draft, options: Array.from({ length: 11 }, (_, i) => `o${i}`) }).ok).toBe(false);
    const now = new Date("2026-01-01T10:00:00Z");
    expect(pollRequest({ ...draft, closesAt: "2025-01-01T10:00" }, now).ok).toBe(false);
    const later = pollRequest({ ...draft, closesAt: "2027-01-01T10:00" }, now);
    expect(later.ok && typeof later.poll.closes_at).toBe("string");
  });

  it("reads a poll back, refusing a wrong shape", () => {
    const poll = { options: [{ id: 0, text: "a", votes: 2 }], multiple: true, anonymous: false, closed: false, closes_at: null, voters: 2, my_vote: null };
    expect(readPoll(poll)).toEqual(poll);
    expect(readPoll({ ...poll, my_vote: [0] })?.my_vote).toEqual([0]);
    expect(readPoll({ ...poll, my_vote: ["0"] })?.my_vote).toBeNull();
    expect(readPoll({ options: [{ id: "0", text: 1 }] })).toBeNull();
    expect(readPoll(null)).toBeNull();
    expect(pollOfMessage({ kind: "poll", deleted: false, metadata: { poll } })).toEqual(poll);
    expect(pollOfMessage({ kind: "text", deleted: false, metadata: { poll } })).toBeNull();
    expect(pollOfMessage({ kind: "poll", deleted: true, metadata: { poll } })).toBeNull();
  });

  it("computes shares and closing", () => {
    expect(percent(1, 3)).toBe(33);
    expect(percent(0, 0)).toBe(0);
    const p = readPoll({ options: [], closes_at: "2026-01-01T00:00:00.000Z" })!;
    expect(isClosed(p, new Date("2026-06-01"))).toBe(true);
    expect(isClosed(p, new Date("2025-06-01"))).toBe(false);
  });
});
