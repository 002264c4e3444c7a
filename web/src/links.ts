// Message text is shown as text: this only finds the spans that may become links. A link is
// made only for an absolute http(s) URL that the URL parser accepts; everything else (javascript:,
// data:, mailto:, relative paths) stays plain text.

export type Segment = { kind: "text"; text: string } | { kind: "link"; text: string; href: string };

const CANDIDATE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
// Punctuation that ends a sentence rather than the URL.
const TRAILING = /[.,;:!?'"]+$/;

/** Trims what is more likely the surrounding sentence than part of the URL. */
function trimCandidate(raw: string): string {
  let s = raw.replace(TRAILING, "");
  // A closing bracket belongs to the URL only when it closes one opened inside it
  // (https://en.wikipedia.org/wiki/Rust_(programming_language)).
  for (const [open, close] of [["(", ")"], ["[", "]"]] as const) {
    while (s.endsWith(close) && count(s, close) > count(s, open)) {
      s = s.slice(0, -1).replace(TRAILING, "");
    }
  }
  return s;
}

function count(s: string, ch: string): number {
  let n = 0;
  for (const c of s) if (c === ch) n++;
  return n;
}

/** The href to use for `text`, or null when it must stay text. */
export function safeHref(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (!url.hostname) return null;
  return url.href;
}

/** Splits message text into text and link segments; joined, their `text`s give back `input`. */
export function linkify(input: string): Segment[] {
  const out: Segment[] = [];
  let last = 0;
  for (const m of input.matchAll(CANDIDATE)) {
    const start = m.index;
    const text = trimCandidate(m[0]);
    const href = safeHref(text);
    if (!href || text.length === 0) continue;
    if (start > last) out.push({ kind: "text", text: input.slice(last, start) });
    out.push({ kind: "link", text, href });
    last = start + text.length;
  }
  if (last < input.length) out.push({ kind: "text", text: input.slice(last) });
  return out;
}
