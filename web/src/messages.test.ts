import { describe, expect, it } from "vitest";
import { catchUpSeq, mergeMessages, newClientMessageId, settlePending, type MessageLike } from "./messages";

const msg = (seq: number, extra: Partial<MessageLike> = {}): MessageLike & { text?: string } => ({
  id: `m${seq}`,
  seq,
  client_message_id: `c${seq}`,
  edited_at: null,
  deleted: false,
  ...extra,
});

describe("mergeMessages", () => {
  it("orders by seq and keeps one copy per id", () => {
    const merged = mergeMessages([msg(3), msg(1)], [msg(2), msg(3), msg(1)]);
    expect(merged.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("keeps an edit against an older copy arriving later", () => {
    const edited = { ...msg(1, { edited_at: "2026-12-03T10:00:00.000Z" }), text: "new" };
    const stale = { ...msg(1), text: "old" };
    expect(mergeMessages([edited], [stale])[0]).toBe(edited);
    expect(mergeMessages([stale], [edited])[0]).toBe(edited);
  });

  it("never resurrects a deleted message", () => {
    const tomb = msg(1, { deleted: true });
    expect(mergeMessages([tomb], [msg(1, { edited_at: "2026-12-03T10:00:00.000Z" })])[0]).toBe(tomb);
  });

  it("takes the incoming copy when both are the same state (reaction counts)", () => {
    const a = { ...msg(1), text: "a" };
    const b = { ...msg(1), text: "b" };
    expect(mergeMessages([a], [b])[0]).toBe(b);
  });
});

describe("catchUpSeq", () => {
  it("is 0 with nothing held", () => {
    expect(catchUpSeq([])).toBe(0);
  });
  it("is the highest seq of a contiguous run", () => {
    expect(catchUpSeq([msg(4), msg(5), msg(6)])).toBe(6);
  });
  it("stops before a gap so the missed messages are fetched", () => {
    expect(catchUpSeq([msg(4), msg(5), msg(8)])).toBe(5);
  });
});

describe("pending sends", () => {
  it("are dropped once the server confirms their client_message_id", () => {
    const pending = [
      { client_message_id: "c1", content: "x", failed: false },
      { client_message_id: "c9", content: "y", failed: true },
    ];
    expect(settlePending(pending, [msg(1)])).toEqual([pending[1]]);
  });
  it("get ids the server accepts", () => {
    const id = newClientMessageId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(newClientMessageId()).not.toBe(id);
  });
});
