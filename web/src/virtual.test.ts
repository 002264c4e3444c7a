import { describe, expect, it } from "vitest";
import { anchorOf, atBottom, nearTop, restoreAnchor, rowAt, rowOffsets, visibleWindow } from "./virtual";

describe("virtual window", () => {
  const heights = Array.from({ length: 10_000 }, (_, i) => (i % 3 === 0 ? 100 : 50));
  const off = rowOffsets(heights, 8);

  it("sums heights and gaps", () => {
    expect(off[0]).toBe(0);
    expect(off[1]).toBe(108);
    expect(off[3]).toBe(108 + 58 + 58);
    expect(off.length).toBe(10_001);
  });

  it("finds the row at a position", () => {
    expect(rowAt(off, 0)).toBe(0);
    expect(rowAt(off, 107.9)).toBe(0);
    expect(rowAt(off, 108)).toBe(1);
    expect(rowAt(off, 1e9)).toBe(9_999);
    expect(rowAt(rowOffsets([], 0), 10)).toBe(0);
  });

  it("renders only the rows in view plus overscan, and pads for the rest", () => {
    const w = visibleWindow(off, 50_000, 600, 300);
    expect(w.end - w.start).toBeLessThan(30);
    expect(w.before).toBe(off[w.start]);
    expect(w.before).toBeLessThanOrEqual(50_000 - 300);
    expect(off[w.end]).toBeGreaterThanOrEqual(50_000 + 600 + 300);
    expect(w.before + (off[w.end]! - off[w.start]!) + w.after).toBe(off[10_000]);
  });

  it("clamps at both ends", () => {
    expect(visibleWindow(off, 0, 600, 300).start).toBe(0);
    const last = visibleWindow(off, off[10_000]! - 600, 600, 300);
    expect(last.end).toBe(10_000);
    expect(last.after).toBe(0);
    expect(visibleWindow(rowOffsets([], 8), 0, 600, 300)).toEqual({ start: 0, end: 0, before: 0, after: 0 });
  });

  it("keeps the reader's row still when older rows are prepended", () => {
    const keys = heights.slice(0, 100).map((_, i) => `m${i}`);
    const small = rowOffsets(heights.slice(0, 100), 8);
    const a = anchorOf(small, keys, 1_000)!;
    expect(a.key).toBe(`m${rowAt(small, 1_000)}`);
    const older = Array.from({ length: 50 }, (_, i) => `o${i}`);
    const grown = rowOffsets([...Array(50).fill(70), ...heights.slice(0, 100)], 8);
    expect(restoreAnchor(grown, [...older, ...keys], a)).toBe(1_000 + 50 * 78);
    expect(restoreAnchor(grown, ["x"], a)).toBeNull();
  });

  it("says when to fetch older rows and when the view is at the bottom", () => {
    expect(nearTop(100, 600)).toBe(true);
    expect(nearTop(5_000, 600)).toBe(false);
    expect(atBottom(400, 1_000, 580)).toBe(true);
    expect(atBottom(100, 1_000, 580)).toBe(false);
  });
});
