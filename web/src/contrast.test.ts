// The colour variables of style.css (and topbar.css) against WCAG 2.x AA, in both schemes:
// 4.5:1 for text, 3:1 for the borders of controls, focus rings and icons/dots.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const here = new URL(".", import.meta.url).pathname;
const css = readFileSync(join(here, "style.css"), "utf8") + readFileSync(join(here, "ui/topbar.css"), "utf8");

/** The `--name: #hex` declarations of the blocks that define them, light (first) or dark. */
function scheme(dark: boolean): Record<string, string> {
  const vars: Record<string, string> = {};
  const re = /(@media \(prefers-color-scheme: dark\)\s*\{\s*)?:root\s*\{([^}]*)\}/g;
  for (const m of css.matchAll(re)) {
    if (!!m[1] !== dark && dark) continue;
    if (m[1] && !dark) continue;
    for (const d of m[2]!.matchAll(/--([a-z-]+):\s*(#[0-9a-fA-F]{6})/g)) vars[d[1]!] = d[2]!;
  }
  return vars;
}

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x! + 0.05) / (y! + 0.05);
}

// [foreground, background, minimum]
const PAIRS: [string, string, number][] = [
  ["text", "bg", 4.5],
  ["text", "panel", 4.5],
  ["text", "mine", 4.5],
  ["muted", "bg", 4.5],
  ["muted", "panel", 4.5],
  ["muted", "mine", 4.5],
  ["accent", "bg", 4.5],
  ["accent", "panel", 4.5],
  ["accent", "mine", 4.5],
  ["accent-text", "accent", 4.5],
  ["error", "bg", 4.5],
  ["error", "panel", 4.5],
  ["focus", "bg", 3],
  ["focus", "panel", 3],
  ["control-border", "bg", 3],
  ["control-border", "panel", 3],
  ["online", "panel", 3],
  ["error", "panel", 3],
];

describe("colour contrast", () => {
  for (const dark of [false, true]) {
    const light = scheme(false);
    const vars = dark ? { ...light, ...scheme(true) } : light;
    for (const [fg, bg, min] of PAIRS) {
      it(`${dark ? "dark" : "light"}: --${fg} on --${bg} ≥ ${min}:1`, () => {
        expect(vars[fg], fg).toBeDefined();
        expect(vars[bg], bg).toBeDefined();
        const ratio = contrast(vars[fg]!, vars[bg]!);
        expect(ratio).toBeGreaterThanOrEqual(min);
      });
    }
  }
});
