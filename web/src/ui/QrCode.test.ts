import { describe, expect, it } from "vitest";
import { encode } from "uqr";
import { modulesPath } from "./QrCode";

describe("modulesPath", () => {
  it("draws one unit square per dark module, offset by the quiet zone", () => {
    expect(modulesPath([[true, false], [false, true]], 4)).toBe("M4 4h1v1h-1zM5 5h1v1h-1z");
    expect(modulesPath([[false]], 4)).toBe("");
  });
  it("draws as many squares as a real code has dark modules", () => {
    const m = encode("otpauth://totp/SecureConnect:ada?secret=JBSWY3DPEHPK3PXP", { border: 0 }).data;
    const dark = m.flat().filter(Boolean).length;
    expect(modulesPath(m, 4).split("z").length - 1).toBe(dark);
  });
});
