// The maths of the virtualized message list: only the rows in view (plus an overscan margin)
// are in the DOM; the others are stood in for by padding of the list, from measured heights
// where a row has been seen and an estimate where it has not.

/** `offsets[i]` is the top of row i (gaps included); `offsets[n]` the height of all rows. */
export function rowOffsets(heights: readonly number[], gap: number): Float64Array {
  const off = new Float64Array(heights.length + 1);
  for (let i = 0; i < heights.length; i++) off[i + 1] = off[i]! + heights[i]! + gap;
  return off;
}

/** The first row whose bottom is below `y` (the row at `y`), clamped to [0, n-1]; 0 when empty. */
export function rowAt(off: Float64Array, y: number): number {
  const n = off.length - 1;
  if (n <= 0) return 0;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (off[mid + 1]! > y) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export interface Window {
  /** First rendered row. */
  start: number;
  /** One past the last rendered row. */
  end: number;
  /** Space standing in for the rows above `start` and below `end`, in pixels. */
  before: number;
  after: number;
}

/** The rows to render for a viewport at `scrollTop` of height `viewport`, `overscan` px each side. */
export function visibleWindow(off: Float64Array, scrollTop: number, viewport: number, overscan: number): Window {
  const n = off.length - 1;
  if (n <= 0) return { start: 0, end: 0, before: 0, after: 0 };
  const start = rowAt(off, Math.max(0, scrollTop - overscan));
  const end = Math.min(n, rowAt(off, scrollTop + viewport + overscan) + 1);
  return { start, end, before: off[start]!, after: off[n]! - off[end]! };
}

/** Where the reader is: the row at the top of the viewport and how far into it, to keep it still. */
export interface Anchor {
  key: string;
  delta: number;
}

export function anchorOf(off: Float64Array, keys: readonly string[], scrollTop: number): Anchor | null {
  if (keys.length === 0) return null;
  const i = rowAt(off, scrollTop);
  return { key: keys[i]!, delta: scrollTop - off[i]! };
}

/** The scrollTop that puts `anchor` back where it was after rows above it changed; null if gone. */
export function restoreAnchor(off: Float64Array, keys: readonly string[], anchor: Anchor): number | null {
  const i = keys.indexOf(anchor.key);
  return i < 0 ? null : off[i]! + anchor.delta;
}

/** Near enough to the top to fetch the older page before the reader reaches it. */
export function nearTop(scrollTop: number, viewport: number): boolean {
  return scrollTop < Math.max(200, viewport);
}

/** At the bottom (within `slack` px): new rows keep the view pinned there. */
export function atBottom(scrollTop: number, scrollHeight: number, viewport: number, slack = 40): boolean {
  return scrollHeight - scrollTop - viewport < slack;
}
