import { describe, expect, it, vi } from "vitest";
import {
  type AppNotification,
  NO_UNREAD,
  base64UrlToBytes,
  bytesToBase64Url,
  isMuted,
  messageConversation,
  unreadAbout,
  muteUntil,
  mutedLabel,
  notificationTarget,
  notificationText,
  sameBytes,
  unreadBadge,
  unreadReducer,
  vapidKey,
} from "./notifications";
import { describePush, parsePushPayload, safeAppPath } from "./push-payload";

const C = "0190f0e0-0000-7000-8000-000000000001";
const U = "0190f0e0-0000-7000-8000-0000000000aa";
const names = {
  conversation: (id: string) => (id === C ? "Project <b>x</b>" : undefined),
  user: (id: string) => (id === U ? "Alice" : undefined),
};
function n(kind: string, data: Record<string, unknown>, id = "n1", read_at: string | null = null): AppNotification {
  return { id, kind, data, read_at, created_at: "2026-12-04T10:00:00.000Z" };
}

describe("notification text", () => {
  it("says who and where from ids, with generic words for unknown names", () => {
    expect(notificationText(n("message", { conversation_id: C, sender_id: U }), names)).toBe(
      "New message from Alice in Project <b>x</b>",
    );
    expect(notificationText(n("message", { conversation_id: "other", sender_id: "x" }), names)).toBe("New message");
    expect(notificationText(n("mention", { conversation_id: C, sender_id: U }), names)).toBe("Alice mentioned you in Project <b>x</b>");
    expect(notificationText(n("mention", {}), names)).toBe("Someone mentioned you");
    expect(notificationText(n("call.missed", { conversation_id: C, caller_id: U }), names)).toBe("Missed call from Alice in Project <b>x</b>");
    expect(notificationText(n("call.scheduled", { conversation_id: C }), names)).toBe("Scheduled call in Project <b>x</b> is starting");
    expect(notificationText(n("file.shared", { owner_id: U, permission: "write" }), names)).toBe("Alice shared a file with you (can edit)");
    expect(notificationText(n("security", { event: "2fa.disabled" }), names)).toBe("Security: Two-factor authentication was turned off");
    expect(notificationText(n("security", { event: "weird" }), names)).toBe("Security: activity on your account");
    expect(notificationText(n("future.kind", {}), names)).toBe("New notification");
  });

  it("leads to the conversation, the file or settings", () => {
    expect(notificationTarget(n("mention", { conversation_id: C }))).toEqual({ kind: "conversation", id: C });
    expect(notificationTarget(n("call.missed", { conversation_id: C }))).toEqual({ kind: "conversation", id: C });
    expect(notificationTarget(n("file.shared", { file_id: "f" }))).toEqual({ kind: "file", id: "f" });
    expect(notificationTarget(n("security", { event: "x" }))).toEqual({ kind: "settings" });
    expect(notificationTarget(n("message", {}))).toBeNull();
  });
});

describe("unread count", () => {
  it("counts loaded, arriving and read notifications once each", () => {
    let s = unreadReducer(NO_UNREAD, { type: "loaded", items: [n("message", {}, "a"), n("message", {}, "b", "2026-12-04T10:00:00Z")], more: false });
    expect(unreadBadge(s)).toBe("1");
    s = unreadReducer(s, { type: "arrived", notification: n("mention", {}, "c") });
    s = unreadReducer(s, { type: "arrived", notification: n("mention", {}, "c") });
    expect(s.ids.size).toBe(2);
    s = unreadReducer(s, { type: "read", id: "a" });
    s = unreadReducer(s, { type: "read", id: "zzz" });
    expect(unreadBadge(s)).toBe("1");
    s = unreadReducer(s, { type: "all-read" });
    expect(unreadBadge(s)).toBe("");
  });
  it("keeps what arrived while a reload was in flight", () => {
    const s = unreadReducer(NO_UNREAD, { type: "loaded", items: [n("message", {}, "a")], more: false, alsoUnread: ["late"] });
    expect([...s.ids].sort()).toEqual(["a", "late"]);
  });
  it("finds the unread ones about a conversation's messages", () => {
    const items = [n("message", { conversation_id: C }, "a"), n("mention", { conversation_id: C }, "b"), n("call.missed", { conversation_id: C }, "c")];
    const s = unreadReducer(NO_UNREAD, { type: "loaded", items, more: false });
    const about = new Map(items.flatMap((x) => { const c = messageConversation(x); return c ? [[x.id, c] as const] : []; }));
    expect(unreadAbout(s, about, C).sort()).toEqual(["a", "b"]);
    expect(unreadAbout(s, about, "other")).toEqual([]);
  });
  it("caps the badge", () => {
    const items = Array.from({ length: 100 }, (_, i) => n("message", {}, `x${i}`));
    expect(unreadBadge(unreadReducer(NO_UNREAD, { type: "loaded", items, more: false }))).toBe("99+");
    expect(unreadBadge(unreadReducer(NO_UNREAD, { type: "loaded", items: items.slice(0, 3), more: true }))).toBe("99+");
  });
});

describe("mute", () => {
  const now = Date.parse("2026-12-04T10:00:00.000Z");
  it("turns a choice into an until", () => {
    expect(muteUntil("1h", now)).toBe("2026-12-04T11:00:00.000Z");
    expect(muteUntil("8h", now)).toBe("2026-12-04T18:00:00.000Z");
    expect(muteUntil("1w", now)).toBe("2026-12-11T10:00:00.000Z");
    expect(muteUntil("forever", now)).toBeUndefined();
  });
  it("reads the state", () => {
    expect(isMuted(null, now)).toBe(false);
    expect(isMuted("2026-12-04T09:59:59.000Z", now)).toBe(false);
    expect(isMuted("2026-12-04T10:00:01.000Z", now)).toBe(true);
    expect(isMuted("garbage", now)).toBe(false);
    expect(mutedLabel("2026-12-04T11:00:00.000Z", now, (d) => d.toISOString())).toBe("Muted until 2026-12-04T11:00:00.000Z");
    expect(mutedLabel("2126-12-04T10:00:00.000Z", now)).toBe("Muted until you unmute");
    expect(mutedLabel(null, now)).toBe("");
  });
});

describe("VAPID key", () => {
  it("decodes base64url with or without padding", () => {
    expect([...base64UrlToBytes("-_8")]).toEqual([0xfb, 0xff]);
    expect([...base64UrlToBytes("-_8=")]).toEqual([0xfb, 0xff]);
    expect(base64UrlToBytes("").length).toBe(0);
    expect(() => base64UrlToBytes("a+b/")).toThrow();
    expect(() => base64UrlToBytes("abcde")).toThrow();
    const bytes = new Uint8Array(65).map((_, i) => (i === 0 ? 4 : i * 3));
    const text = bytesToBase64Url(bytes);
    expect(text).not.toMatch(/[+/=]/);
    expect(sameBytes(vapidKey(text), bytes)).toBe(true);
    expect(sameBytes(null, bytes)).toBe(false);
  });
  it("refuses what is not an uncompressed P-256 point", () => {
    expect(() => vapidKey(bytesToBase64Url(new Uint8Array(64)))).toThrow();
    expect(() => vapidKey(bytesToBase64Url(new Uint8Array(65)))).toThrow();
  });
});

describe("push payload", () => {
  it("shows generic words for a content-free push, the resolved name when a page knows it", () => {
    const p = parsePushPayload(JSON.stringify({ type: "message", conversation_id: C, notification_id: U }));
    expect(describePush(p)).toEqual({
      title: "New message in SecureConnect",
      body: "Open SecureConnect to read it.",
      tag: `conversation:${C}`,
      url: `/c/${C}`,
    });
    expect(describePush(p, "Team").title).toBe("New message in Team");
    const ring = parsePushPayload(JSON.stringify({ type: "call.ringing", conversation_id: C, call_id: U }));
    expect(describePush(ring).tag).toBe(`call:${U}`);
    expect(describePush(parsePushPayload(JSON.stringify({ type: "message", title: "Bob", body: "hi" }))).title).toBe("Bob");
  });
  it("drops what is not a payload or not an id", () => {
    expect(parsePushPayload("")).toBeNull();
    expect(parsePushPayload("nope")).toBeNull();
    expect(parsePushPayload("[1]")).toBeNull();
    expect(parsePushPayload(JSON.stringify({ type: "message", conversation_id: "../../evil" }))?.conversation_id).toBeUndefined();
    expect(describePush(null).url).toBe("/notifications");
  });
  it("opens only app paths", () => {
    expect(safeAppPath(`/c/${C}`)).toBe(`/c/${C}`);
    expect(safeAppPath("/notifications")).toBe("/notifications");
    expect(safeAppPath("https://evil.example/")).toBe("/");
    expect(safeAppPath("//evil.example")).toBe("/");
  });
});

describe("direct conversations", () => {
  it("do not name the sender twice", () => {
    const direct = { conversation: () => "Alice", user: () => "Alice" };
    expect(notificationText(n("mention", { conversation_id: C, sender_id: U }), direct)).toBe("Alice mentioned you");
  });
});

describe("route", () => {
  it("has /notifications", async () => {
    // router.ts listens for popstate on load; a bare stand-in is enough for the pure functions.
    vi.stubGlobal("addEventListener", () => {});
    const { parseRoute, routePath } = await import("./router");
    expect(parseRoute("/notifications")).toEqual({ name: "notifications" });
    expect(routePath({ name: "notifications" })).toBe("/notifications");
  });
});
