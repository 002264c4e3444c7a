import { describe, expect, it } from "vitest";
import { allPages } from "./pages";

describe("allPages", () => {
  const pages: Record<string, { items: number[]; next_cursor?: string | null }> = {
    "": { items: [1, 2], next_cursor: "b" },
    b: { items: [3], next_cursor: "c" },
    c: { items: [4], next_cursor: null },
  };
  it("follows next_cursor to the end", async () => {
    const seen: (string | undefined)[] = [];
    const all = await allPages(async (c) => (seen.push(c), pages[c ?? ""]!), 10);
    expect(all).toEqual([1, 2, 3, 4]);
    expect(seen).toEqual([undefined, "b", "c"]);
  });
  it("stops after maxPages", async () => {
    expect(await allPages(async (c) => pages[c ?? ""]!, 2)).toEqual([1, 2, 3]);
  });
});
