// Server-sent events read from a fetch body (EventSource cannot POST nor send a bearer
// header). The parser is incremental: bytes arrive in chunks cut anywhere — inside a line,
// inside a UTF-8 sequence, between "\r" and "\n" — and events come out as soon as their
// blank line has arrived (https://html.spec.whatwg.org/multipage/server-sent-events.html).

export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  id?: string;
}

export class SseParser {
  private decoder = new TextDecoder();
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | undefined;
  private sawCr = false;

  /** Feeds a chunk of the body; answers the events it completed. */
  push(chunk: Uint8Array | string): SseEvent[] {
    let text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    // A "\r\n" split between two chunks: the "\n" belongs to the line already ended.
    if (text === "") return [];
    if (this.sawCr && text.startsWith("\n")) text = text.slice(1);
    this.sawCr = false;
    this.buffer += text;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // A lone "\r" at the very end may be the first half of "\r\n".
      if (m[0] === "\r" && m.index === this.buffer.length - 1) this.sawCr = true;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    return out;
  }

  /** The body ended: an event without its final blank line is dropped, as the spec says. */
  end(): SseEvent[] {
    this.buffer += this.decoder.decode();
    this.buffer = "";
    this.data = [];
    this.event = "";
    return [];
  }

  private line(line: string): SseEvent | null {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = "";
        return null;
      }
      const ev: SseEvent = { event: this.event || "message", data: this.data.join("\n") };
      if (this.id !== undefined) ev.id = this.id;
      this.data = [];
      this.event = "";
      return ev;
    }
    if (line.startsWith(":")) return null; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
    return null;
  }
}

/** What one event of `POST /v1/ai/chat` with `stream: true` means (API.md §12 "AI"). */
export type ChatStreamItem =
  | { kind: "delta"; text: string }
  | { kind: "done"; usage?: { prompt_tokens?: number; completion_tokens?: number } }
  | { kind: "error"; code: string; message: string };

/**
 * Reads one SSE event of the chat stream. `[DONE]` (the OpenAI end marker) counts as done;
 * an `error` event or field is an error; an unreadable event is skipped (null).
 */
export function chatItem(ev: SseEvent): ChatStreamItem | null {
  const raw = ev.data.trim();
  if (raw === "[DONE]") return { kind: "done" };
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    if (ev.event === "error") return { kind: "error", code: "SERVICE_UNAVAILABLE", message: raw || "The answer failed." };
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.error !== undefined || ev.event === "error") {
    const e = (typeof o.error === "object" && o.error !== null ? o.error : o) as Record<string, unknown>;
    return {
      kind: "error",
      code: typeof e.code === "string" ? e.code : "SERVICE_UNAVAILABLE",
      message: typeof e.message === "string" ? e.message : "The answer failed.",
    };
  }
  if (typeof o.delta === "string") return { kind: "delta", text: o.delta };
  if (o.done === true) {
    const usage = typeof o.usage === "object" && o.usage !== null ? (o.usage as Record<string, number>) : undefined;
    return usage ? { kind: "done", usage } : { kind: "done" };
  }
  return null;
}

/**
 * Reads a chat stream body to its end, calling `onItem` for each item as it arrives. Answers
 * how it ended: "done", "error" (an error event; `onItem` saw it) or "cut" (the body ended
 * without either). Stops reading after done or an error.
 */
export async function readChatStream(
  body: ReadableStream<Uint8Array>,
  onItem: (item: ChatStreamItem) => void,
): Promise<"done" | "error" | "cut"> {
  const reader = body.getReader();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      const events = done ? parser.end() : parser.push(value);
      for (const ev of events) {
        const item = chatItem(ev);
        if (!item) continue;
        onItem(item);
        if (item.kind !== "delta") return item.kind;
      }
      if (done) return "cut";
    }
  } finally {
    // Dropping the rest tells the server (and so the provider) to stop.
    void reader.cancel().catch(() => undefined);
  }
}
