// The AI helpers' client side (API.md §9 and §12 "AI"): what the server offers, the user's
// opt-in, streamed assistant chat, and plain messages for the statuses these routes answer.

import { ApiFailure, type Schemas, api, http } from "./api/client";
import { type ChatStreamItem, readChatStream } from "./sse";

export type AiSettings = Schemas["AiSettingsView"];
export type ChatTurn = { role: "user" | "assistant" | "system"; content: string };

export function loadAiSettings(): Promise<AiSettings> {
  return api((headers) => http.GET("/v1/ai/settings", { headers }));
}

export function saveAiOptIn(enabled: boolean): Promise<AiSettings> {
  return api((headers) => http.PATCH("/v1/ai/settings", { headers, body: { enabled } }));
}

/** "4 h 12 min", "3 min", "20 s": how long until a budget resets. */
export function waitText(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.ceil((s % 3600) / 60);
  if (h === 0) return `${m} min`;
  return m === 0 || m === 60 ? `${m === 60 ? h + 1 : h} h` : `${h} h ${m} min`;
}

/** The seconds a 429 asks to wait (details.retry_after_seconds, which equals Retry-After). */
export function retryAfter(e: ApiFailure): number | null {
  const v = e.details?.retry_after_seconds;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** A sentence for a failed AI request, saying what the reader can do about it. */
export function aiProblem(e: unknown, what = "The request"): string {
  if (!(e instanceof ApiFailure)) return `${what} failed.`;
  switch (e.status) {
    case 401:
      return "Your session has ended. Sign in again.";
    case 403:
      if (e.code === "EMAIL_NOT_VERIFIED") return "Verify your email address to use the AI helpers.";
      return `Not allowed: ${e.message}. AI helpers need your opt-in (“Use AI helpers” in Settings or on the Assistant screen).`;
    case 413:
      return `Too long: ${e.message}. Start a new chat or shorten the text.`;
    case 429: {
      const wait = retryAfter(e);
      return wait === null
        ? `Too many AI requests: ${e.message}`
        : `Your daily AI budget is used up. Try again in ${waitText(wait)}.`;
    }
    case 503:
      return `The AI service is unavailable right now: ${e.message}`;
    default:
      return e.code === "NETWORK" ? "The server cannot be reached." : `${what} failed: ${e.message}`;
  }
}

/**
 * `POST /v1/ai/chat` with `stream: true`: the typed client hands over the body as a stream;
 * `onItem` sees each delta as it arrives. Errors before the stream starts throw ApiFailure;
 * an abort through `signal` answers "aborted".
 */
export async function streamChat(
  messages: ChatTurn[],
  signal: AbortSignal,
  onItem: (item: ChatStreamItem) => void,
): Promise<"done" | "error" | "cut" | "aborted"> {
  try {
    const body = await api(async (headers) => {
      const r = await http.POST("/v1/ai/chat", {
        headers: { ...headers, Accept: "text/event-stream" },
        body: { messages, stream: true },
        parseAs: "stream",
        signal,
      });
      return r.data ? { data: { data: r.data }, response: r.response } : { error: r.error, response: r.response };
    });
    if (!body) throw new ApiFailure(502, "NETWORK", "the answer had no body");
    return await readChatStream(body, onItem);
  } catch (e) {
    if (signal.aborted) return "aborted";
    throw e;
  }
}
