// The list named "Messages", virtualized: only the rows in view (plus an overscan margin) are in
// the DOM, the others stand in as padding of the list computed from measured row heights (an
// estimate for rows not seen yet). Older pages are asked for when the reader nears the top, and
// the row the reader is looking at stays still when they arrive; at the bottom, the list stays
// pinned to the newest row.

import type { RefObject, VNode } from "preact";
import { useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { type Anchor, atBottom, nearTop, restoreAnchor, rowOffsets, visibleWindow } from "../virtual";
import "./chat-features.css";

/** What each row's `<li>` must carry: its key (for measuring) and its place in the set. */
export interface RowPosition {
  "data-key": string;
  "aria-posinset": number;
  "aria-setsize": number;
}

export interface Row {
  key: string;
  /** Position in the whole conversation (a message's seq), 1-based. */
  posinset: number;
  render(pos: RowPosition): VNode;
}

interface Props {
  rows: readonly Row[];
  /** The size of the whole set (the conversation's newest seq plus pending rows). */
  setsize: number;
  hasOlder: boolean;
  onNearTop: () => void;
  /** Shared with the view: sending a message pins the list to the bottom again. */
  stick: RefObject<boolean>;
  /** A row to bring into view and focus (a reply's original), with a counter to repeat it. */
  jump: { key: string; n: number } | null;
}

const ESTIMATE = 64;
const OVERSCAN = 600;
/** The list's own padding above the first row and below the last (CSS sets none). */
const EDGE = 12;

export function MessageList({ rows, setsize, hasOlder, onNearTop, stick, jump }: Props) {
  const listRef = useRef<HTMLOListElement>(null);
  // The scrolling box around the list (padding of a scrolling box would make it grow instead).
  const scrollRef = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const gap = useRef(8);
  const [version, setVersion] = useState(0);
  const [view, setView] = useState({ top: 0, height: 600 });
  const viewHeight = useRef(view.height);
  viewHeight.current = view.height;
  const anchor = useRef<Anchor | null>(null);
  const jumped = useRef(0);
  const keys = useMemo(() => rows.map((r) => r.key), [rows]);
  const off = useMemo(
    () => rowOffsets(keys.map((k) => heights.current.get(k) ?? ESTIMATE), gap.current),
    [keys, version],
  );
  const total = off[off.length - 1] ?? 0;

  // The window: at the bottom while pinned, else where the reader scrolled to.
  const top = stick.current ? Math.max(0, total - view.height) : Math.max(0, view.top - EDGE);
  const win = visibleWindow(off, top, view.height, OVERSCAN);
  const winRef = useRef(win);
  winRef.current = win;

  /** Heights of the rendered rows; true when one differs from what the offsets assumed. */
  function measure(): boolean {
    const el = listRef.current;
    if (!el) return false;
    let changed = false;
    for (const child of el.children) {
      const k = (child as HTMLElement).dataset["key"];
      if (!k) continue;
      const h = (child as HTMLElement).offsetHeight;
      if (heights.current.get(k) !== h) {
        heights.current.set(k, h);
        changed = true;
      }
    }
    return changed;
  }

  function rowElement(key: string): HTMLElement | null {
    const el = listRef.current;
    if (!el) return null;
    for (const child of el.children) if ((child as HTMLElement).dataset["key"] === key) return child as HTMLElement;
    return null;
  }

  /** The row at the top of the viewport, read from the DOM. */
  function readAnchor(el: HTMLDivElement): Anchor | null {
    for (const child of listRef.current?.children ?? []) {
      const c = child as HTMLElement;
      const k = c.dataset["key"];
      if (k && c.offsetTop + c.offsetHeight > el.scrollTop) return { key: k, delta: el.scrollTop - c.offsetTop };
    }
    return null;
  }

  function setScroll(el: HTMLDivElement, y: number) {
    if (Math.abs(el.scrollTop - y) > 1) el.scrollTop = y;
  }

  // Padding for the rows not rendered, then the scroll position: pinned, or the anchor kept.
  useLayoutEffect(() => {
    const list = listRef.current;
    const el = scrollRef.current;
    if (!el || !list) return;
    gap.current = parseFloat(getComputedStyle(list).rowGap) || 0;
    list.style.paddingTop = `${EDGE + win.before}px`;
    list.style.paddingBottom = `${EDGE + win.after}px`;
    const changed = measure();
    const height = el.clientHeight;
    if (jump && jumped.current !== jump.n) {
      const row = rowElement(jump.key);
      const i = keys.indexOf(jump.key);
      if (i >= 0) {
        stick.current = false;
        anchor.current = { key: jump.key, delta: -Math.max(0, height / 3) };
        if (row) {
          jumped.current = jump.n;
          row.focus({ preventScroll: true });
          row.classList.add("flash");
          setTimeout(() => row.classList.remove("flash"), 1600);
        }
      }
    }
    if (stick.current) {
      setScroll(el, el.scrollHeight - height);
    } else if (anchor.current) {
      const row = rowElement(anchor.current.key);
      const y = row ? row.offsetTop + anchor.current.delta : restoreAnchor(off, keys, anchor.current);
      if (y !== null) setScroll(el, row ? y : y + EDGE);
    }
    if (changed) setVersion((v) => v + 1);
    else if (Math.abs(view.top - el.scrollTop) > 1 || view.height !== height) {
      setView({ top: el.scrollTop, height });
    }
    // A short history does not scroll: fetch older until it does (or there is none).
    if (hasOlder && el.scrollHeight <= height + 1) onNearTop();
  });

  // Rows that change height later (an edit form, a reaction, a poll's results).
  useLayoutEffect(() => {
    const el = listRef.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const box = scrollRef.current;
    const ro = new ResizeObserver(() => {
      if (measure()) setVersion((v) => v + 1);
      // The viewport itself (a window resized, a phone turned): a taller one shows more rows.
      if (box && box.clientHeight !== viewHeight.current) setView({ top: box.scrollTop, height: box.clientHeight });
    });
    for (const child of el.children) ro.observe(child);
    if (box) ro.observe(box);
    return () => ro.disconnect();
  });

  function onScroll() {
    const el = scrollRef.current;
    if (!el) return;
    stick.current = atBottom(el.scrollTop, el.scrollHeight, el.clientHeight);
    anchor.current = readAnchor(el);
    const next = visibleWindow(off, Math.max(0, el.scrollTop - EDGE), el.clientHeight, OVERSCAN);
    const cur = winRef.current;
    // Render again only when the window moves (or gets near its edge).
    if (next.start !== cur.start || next.end !== cur.end || el.clientHeight !== view.height) {
      setView({ top: el.scrollTop, height: el.clientHeight });
    }
    if (hasOlder && nearTop(el.scrollTop, el.clientHeight)) onNearTop();
  }

  return (
    <div class="messages-scroll" ref={scrollRef} onScroll={onScroll}>
      <ol class="messages virtual" aria-label="Messages" ref={listRef}>
        {rows.slice(win.start, win.end).map((r) =>
          r.render({ "data-key": r.key, "aria-posinset": r.posinset, "aria-setsize": setsize }),
        )}
      </ol>
    </div>
  );
}
