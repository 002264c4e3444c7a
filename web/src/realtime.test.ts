import { describe, expect, it } from "vitest";
import { reconnectDelay, socketUrl } from "./realtime";

describe("reconnectDelay", () => {
  it("grows from half a second and stops at 15 s", () => {
    const mid = () => 0.5;
    expect(reconnectDelay(0, mid)).toBe(500);
    expect(reconnectDelay(1, mid)).toBe(1000);
    expect(reconnectDelay(5, mid)).toBe(15_000);
    expect(reconnectDelay(500, mid)).toBe(15_000);
  });
  it("spreads clients by ±25 %", () => {
    expect(reconnectDelay(0, () => 0)).toBe(375);
    expect(reconnectDelay(0, () => 1)).toBe(625);
  });
});

describe("socketUrl", () => {
  it("uses ws on http and wss on https, on the page's own origin", () => {
    expect(socketUrl("http://127.0.0.1:8080", "t")).toBe("ws://127.0.0.1:8080/v1/realtime?ticket=t");
    expect(socketUrl("https://chat.example.org", "a+b/c")).toBe(
      "wss://chat.example.org/v1/realtime?ticket=a%2Bb%2Fc",
    );
  });
});
