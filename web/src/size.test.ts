import { describe, expect, it } from "vitest";
import { SIZE_UNITS, formatSize } from "./size";

describe("sizes", () => {
  it("are shown in B, KB, MB, GB with one decimal below 10", () => {
    expect(formatSize(0)).toBe("0 B");
    expect(formatSize(1023)).toBe("1023 B");
    expect(formatSize(1024)).toBe("1 KB");
    expect(formatSize(1536)).toBe("1.5 KB");
    expect(formatSize(10 * 1024 + 600)).toBe("11 KB");
    expect(formatSize(5 * 1024 * 1024)).toBe("5 MB");
    expect(formatSize(1.25 * 1024 ** 3)).toBe("1.3 GB");
    expect(formatSize(3 * 1024 ** 5)).toBe("3072 TB");
    expect(formatSize(-1)).toBe("");
    expect(formatSize(Number.NaN)).toBe("");
  });
  it("reads back what an administrator types as a quota", () => {
    expect(formatSize(2.5 * SIZE_UNITS.GB)).toBe("2.5 GB");
    expect(formatSize(250 * SIZE_UNITS.MB)).toBe("250 MB");
  });
});
