import { describe, expect, it } from "vitest";
import { type MyReactions, canAdd, chipLabel, myReactionsReducer, reactionChips } from "./reactions";

const event = (user_id: string, emoji: string, added: boolean) => ({
  type: "event" as const,
  me: "me",
  event: { message_id: "m1", conversation_id: "c", reactions: {}, user_id, emoji, added },
});

describe("reaction state", () => {
  it("remembers my reactions from my calls and my events, not others'", () => {
    let s: MyReactions = new Map();
    s = myReactionsReducer(s, { type: "set", message_id: "m1", emoji: "👍", mine: true });
    expect([...s.get("m1")!]).toEqual(["👍"]);
    const same = myReactionsReducer(s, event("me", "👍", true));
    expect(same).toBe(s);
    expect(myReactionsReducer(s, event("other", "🎉", true))).toBe(s);
    s = myReactionsReducer(s, event("me", "🎉", true));
    expect([...s.get("m1")!].sort()).toEqual(["🎉", "👍"].sort());
    s = myReactionsReducer(s, event("me", "👍", false));
    s = myReactionsReducer(s, { type: "set", message_id: "m1", emoji: "🎉", mine: false });
    expect(s.has("m1")).toBe(false);
  });

  it("takes mine from history pages and ignores views that carry none", () => {
    let s: MyReactions = new Map([["m1", new Set(["👍"])]]);
    s = myReactionsReducer(s, {
      type: "loaded",
      messages: [
        { id: "m1", my_reactions: [] },
        { id: "m2", my_reactions: ["🎉", "👀"] },
        { id: "m3" },
      ],
    });
    expect(s.has("m1")).toBe(false);
    expect([...(s.get("m2") ?? [])]).toEqual(["🎉", "👀"]);
    expect(s.has("m3")).toBe(false);
    const same = myReactionsReducer(s, { type: "loaded", messages: [{ id: "m9" }] });
    expect(same).toBe(s);
  });

  it("lists chips with counts above zero and marks mine", () => {
    const chips = reactionChips({ "👍": 2, "🎉": 0, "😂": 1 }, new Set(["😂"]));
    expect(chips).toEqual([
      { emoji: "👍", count: 2, mine: false },
      { emoji: "😂", count: 1, mine: true },
    ]);
    expect(reactionChips(undefined, undefined)).toEqual([]);
    expect(chipLabel(chips[1]!)).toContain("including yours");
    expect(chipLabel(chips[0]!)).toBe("👍 2 reactions");
  });

  it("respects the bound on different emoji", () => {
    const full = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`e${i}`, 1]));
    expect(canAdd(full, "e3")).toBe(true);
    expect(canAdd(full, "new")).toBe(false);
    expect(canAdd({ a: 1 }, "b", 2)).toBe(true);
  });
});
