import { describe, expect, it } from "vitest";
import { linkify, safeHref } from "./links";

const joined = (s: string) =>
  linkify(s)
    .map((x) => x.text)
    .join("");

describe("linkify", () => {
  it("keeps plain text as one text segment", () => {
    expect(linkify("hello <b>there</b>")).toEqual([{ kind: "text", text: "hello <b>there</b>" }]);
  });

  it("finds http and https links inside text", () => {
    expect(linkify("see https://example.org/a?b=1 now")).toEqual([
      { kind: "text", text: "see " },
      { kind: "link", text: "https://example.org/a?b=1", href: "https://example.org/a?b=1" },
      { kind: "text", text: " now" },
    ]);
    expect(linkify("http://x.test")).toEqual([
      { kind: "link", text: "http://x.test", href: "http://x.test/" },
    ]);
  });

  it("leaves sentence punctuation outside the link", () => {
    const s = linkify("go to https://example.org/page.");
    expect(s[1]).toEqual({
      kind: "link",
      text: "https://example.org/page",
      href: "https://example.org/page",
    });
    expect(s[2]).toEqual({ kind: "text", text: "." });
  });

  it("keeps balanced parentheses and drops an unbalanced closing one", () => {
    const wiki = "https://en.wikipedia.org/wiki/Rust_(programming_language)";
    expect(linkify(`(${wiki})`)[1]?.text).toBe(wiki);
    expect(linkify("(https://example.org/x)")[1]?.text).toBe("https://example.org/x");
  });

  it("never links other schemes", () => {
    for (const s of [
      "javascript:alert(1)",
      "data:text/html,<script>alert(1)</script>",
      "JaVaScRiPt:alert(1)",
      "mailto:a@b.c",
      "//evil.test/x",
      "ftp://files.test/",
    ]) {
      expect(linkify(s).every((x) => x.kind === "text"), s).toBe(true);
    }
  });

  it("does not link a scheme hidden after a quote or inside markup", () => {
    const s = `<a href="javascript:alert(1)">https://ok.test</a>`;
    const links = linkify(s).filter((x) => x.kind === "link");
    expect(links.map((l) => l.text)).toEqual(["https://ok.test"]);
  });

  it("gives back the input when the segments are joined", () => {
    for (const s of ["", "a https://b.test/c) d", "x http://y.test/(z) w.", "https://", "ünïcode https://例え.テスト/パス"]) {
      expect(joined(s)).toBe(s);
    }
  });
});

describe("safeHref", () => {
  it("accepts absolute http(s) URLs only", () => {
    expect(safeHref("https://example.org")).toBe("https://example.org/");
    expect(safeHref("javascript:alert(1)")).toBeNull();
    expect(safeHref("https://")).toBeNull();
    expect(safeHref("not a url")).toBeNull();
  });
});
