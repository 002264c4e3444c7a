import { describe, expect, it } from "vitest";
import { dateTime, lastActivity, typingLine } from "./format";

describe("lastActivity", () => {
  const now = new Date("2026-12-03T15:00:00.000Z");
  it("shows the time for today and the date before", () => {
    const today = lastActivity("2026-12-03T09:05:00.000Z", now);
    const earlier = lastActivity("2026-11-20T09:05:00.000Z", now);
    expect(today).toMatch(/\d/);
    expect(today).not.toBe(earlier);
    expect(earlier).toMatch(/20/);
  });
});

describe("typingLine", () => {
  it("names one or two people and counts more", () => {
    expect(typingLine([])).toBe("");
    expect(typingLine(["Ada"])).toBe("Ada is typing…");
    expect(typingLine(["Ada", "Grace"])).toBe("Ada and Grace are typing…");
    expect(typingLine(["a", "b", "c"])).toBe("3 people are typing…");
  });
});

describe("dateTime", () => {
  it("shows the date and the time, in the given locale", () => {
    const at = "2026-12-04T10:00:00.000Z";
    const want = new Date(at).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
    expect(dateTime(at, "en-GB")).toBe(want);
    expect(dateTime(at, "en-GB")).toMatch(/2026/);
  });
});
