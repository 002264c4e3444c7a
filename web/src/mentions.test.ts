import { describe, expect, it } from "vitest";
import { activeMention, insertMention, mentionCompletions, mentionsMe } from "./mentions";

const members = [
  { user_id: "1", username: "alice", display_name: "Alice Liddell" },
  { user_id: "2", username: "bob", display_name: "Bob Builder" },
  { user_id: "3", username: "albert", display_name: "Albert Camus" },
  { user_id: "4", username: "carol", display_name: "Carol Alvarez" },
];

describe("mentions", () => {
  it("finds the mention being typed", () => {
    expect(activeMention("hi @al", 6)).toEqual({ start: 3, query: "al" });
    expect(activeMention("@", 1)).toEqual({ start: 0, query: "" });
    expect(activeMention("(@Bo", 4)).toEqual({ start: 1, query: "bo" });
    expect(activeMention("mail a@b", 8)).toBeNull();
    expect(activeMention("hi @al there", 12)).toBeNull();
    expect(activeMention("no at", 5)).toBeNull();
    // The caret in the middle of the word: what is before it.
    expect(activeMention("@alice", 3)).toEqual({ start: 0, query: "al" });
  });

  it("completes by username first, then by a word of the name, without me", () => {
    expect(mentionCompletions(members, "al", "9").map((m) => m.username)).toEqual(["albert", "alice", "carol"]);
    expect(mentionCompletions(members, "al", "1").map((m) => m.username)).toEqual(["albert", "carol"]);
    expect(mentionCompletions(members, "", "2").length).toBe(3);
    expect(mentionCompletions(members, "zz", "2")).toEqual([]);
    expect(mentionCompletions(members, "", "0", 2).length).toBe(2);
  });

  it("inserts @username and a space, the caret after it", () => {
    const text = "hi @al and more";
    const m = activeMention(text, 6)!;
    expect(insertMention(text, m, 6, "alice")).toEqual({ text: "hi @alice and more", caret: 10 });
    expect(insertMention("@b", activeMention("@b", 2)!, 2, "bob")).toEqual({ text: "@bob ", caret: 5 });
  });

  it("knows a message that mentions me", () => {
    expect(mentionsMe({ sender_id: "2", mentions: ["1"], mentions_all: false }, "1")).toBe(true);
    expect(mentionsMe({ sender_id: "2", mentions: [], mentions_all: true }, "1")).toBe(true);
    expect(mentionsMe({ sender_id: "2", mentions: ["3"], mentions_all: false }, "1")).toBe(false);
    expect(mentionsMe({ sender_id: "1", mentions: ["1"], mentions_all: false }, "1")).toBe(false);
  });
});
