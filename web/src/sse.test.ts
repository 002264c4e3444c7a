import { describe, expect, it } from "vitest";
import { type ChatStreamItem, SseParser, chatItem, readChatStream } from "./sse";

const enc = new TextEncoder();

function feedAll(parser: SseParser, chunks: (string | Uint8Array)[]) {
  return chunks.flatMap((c) => parser.push(c));
}

/** Every way of cutting `text` in two, plus byte-by-byte. */
function cuts(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.slice(0, i), bytes.slice(i)]);
  out.push([...bytes].map((b) => new Uint8Array([b])));
  return out;
}

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(x);
      c.close();
    },
  });
}

describe("SseParser", () => {
  it("gives the same events however the bytes are cut (lines, CRLF, UTF-8 sequences)", () => {
    const text = 'data: {"delta":"Hé"}\r\n\r\n: keep-alive\n\ndata: {"delta":"llo 👋"}\r\rdata: {"done":true}\n\n';
    const bytes = enc.encode(text);
    const expected = [
      { event: "message", data: '{"delta":"Hé"}' },
      { event: "message", data: '{"delta":"llo 👋"}' },
      { event: "message", data: '{"done":true}' },
    ];
    for (const chunks of cuts(bytes)) {
      const p = new SseParser();
      expect(feedAll(p, chunks)).toEqual(expected);
    }
  });

  it("joins multi-line data with newlines, reads event and id, strips one leading space", () => {
    const p = new SseParser();
    const evs = p.push("event: note\nid: 7\ndata: first\ndata:  second\ndata\n\n");
    expect(evs).toEqual([{ event: "note", data: "first\n second\n", id: "7" }]);
  });

  it("emits an event only at its blank line and drops an unfinished one at the end", () => {
    const p = new SseParser();
    expect(p.push("data: a")).toEqual([]);
    expect(p.push("\n")).toEqual([]);
    expect(p.push("\n")).toEqual([{ event: "message", data: "a" }]);
    expect(p.push("data: half\n")).toEqual([]);
    expect(p.end()).toEqual([]);
  });

  it("ignores blank lines with no data and comments", () => {
    const p = new SseParser();
    expect(p.push("\n\n:x\n\nretry: 10\n\n")).toEqual([]);
  });
});

describe("chatItem", () => {
  it("reads deltas, done with usage, [DONE] and error events", () => {
    expect(chatItem({ event: "message", data: '{"delta":"Hel"}' })).toEqual({ kind: "delta", text: "Hel" });
    expect(chatItem({ event: "message", data: '{"done":true,"usage":{"prompt_tokens":3,"completion_tokens":4}}' })).toEqual({
      kind: "done",
      usage: { prompt_tokens: 3, completion_tokens: 4 },
    });
    expect(chatItem({ event: "message", data: "[DONE]" })).toEqual({ kind: "done" });
    expect(
      chatItem({ event: "message", data: '{"error":{"code":"SERVICE_UNAVAILABLE","message":"AI provider unavailable: timed out"}}' }),
    ).toEqual({ kind: "error", code: "SERVICE_UNAVAILABLE", message: "AI provider unavailable: timed out" });
    expect(chatItem({ event: "error", data: "boom" })).toEqual({ kind: "error", code: "SERVICE_UNAVAILABLE", message: "boom" });
    expect(chatItem({ event: "message", data: "not json" })).toBeNull();
    expect(chatItem({ event: "message", data: '{"other":1}' })).toBeNull();
  });
});

describe("readChatStream", () => {
  const body = 'data: {"delta":"Hel"}\n\ndata: {"delta":"lo, "}\n\ndata: {"delta":"Ada!"}\n\ndata: {"done":true,"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\ndata: {"delta":"after"}\n\n';

  it("concatenates the deltas and stops at done, wherever the chunks are cut", async () => {
    for (const chunks of cuts(enc.encode(body))) {
      const items: ChatStreamItem[] = [];
      const how = await readChatStream(streamOf(chunks), (i) => items.push(i));
      expect(how).toBe("done");
      expect(items.filter((i) => i.kind === "delta").map((i) => (i as { text: string }).text).join("")).toBe("Hello, Ada!");
      expect(items[items.length - 1]!.kind).toBe("done");
    }
  });

  it("reports an error event, and a body cut short", async () => {
    const items: ChatStreamItem[] = [];
    const err = 'data: {"delta":"Hi"}\n\ndata: {"error":{"code":"SERVICE_UNAVAILABLE","message":"AI provider unavailable"}}\n\n';
    expect(await readChatStream(streamOf([enc.encode(err)]), (i) => items.push(i))).toBe("error");
    expect(items[1]).toEqual({ kind: "error", code: "SERVICE_UNAVAILABLE", message: "AI provider unavailable" });
    expect(await readChatStream(streamOf([enc.encode('data: {"delta":"Hi"}\n\ndata: {"del')]), () => {})).toBe("cut");
  });
});
