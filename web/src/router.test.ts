import { describe, expect, it, vi } from "vitest";

// router.ts listens for popstate on load; a bare stand-in is enough for the pure functions.
vi.stubGlobal("addEventListener", () => {});
const { parseRoute, routePath } = await import("./router");

describe("routes", () => {
  it("parse and print each other", () => {
    const id = "0190b2f1-7a3c-7def-8abc-0123456789ab";
    for (const path of ["/", "/sign-in", "/register", "/settings", `/c/${id}`]) {
      expect(routePath(parseRoute(path))).toBe(path);
    }
  });
  it("take the token of the mails' links, and print without it", () => {
    expect(parseRoute("/verify-email", "?token=abc_-1")).toEqual({ name: "verify-email", token: "abc_-1" });
    expect(parseRoute("/reset-password", "?token=xyz")).toEqual({ name: "reset-password", token: "xyz" });
    expect(parseRoute("/reset-password", "")).toEqual({ name: "reset-password", token: "" });
    expect(routePath({ name: "reset-password", token: "secret" })).toBe("/reset-password");
  });
  it("fall back to home for anything unknown or malformed", () => {
    expect(parseRoute("/c/not-a-uuid")).toEqual({ name: "home" });
    expect(parseRoute("/nowhere")).toEqual({ name: "home" });
    expect(parseRoute("/c/0190b2f1-7a3c-7def-8abc-0123456789ab/extra")).toEqual({ name: "home" });
  });
});

describe("drive routes", () => {
  it("parse and print each other", () => {
    const id = "0190b2f1-7a3c-7def-8abc-0123456789ab";
    for (const path of ["/drive", `/drive/${id}`, "/drive/shared", "/l/AbCdEfGhIjKlMnOpQrStUv_-0123456789"]) {
      expect(routePath(parseRoute(path))).toBe(path);
    }
    expect(parseRoute(`/drive/${id.toUpperCase()}`)).toEqual({ name: "drive", folder: id });
    expect(parseRoute("/drive/not-a-folder")).toEqual({ name: "home" });
    expect(parseRoute("/l/short")).toEqual({ name: "home" });
  });
});
