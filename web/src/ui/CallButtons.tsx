// The open conversation's call controls: "Call" and "Video call" (the call itself runs in the
// app-level CallLayer), and the conversation's call history, a page at a time.

import { useEffect, useState } from "preact/hooks";
import { api, http } from "../api/client";
import { type Call, historyLine } from "../calls/logic";
import { CallQuality } from "./CallQuality";
import { currentCall, onCurrentCall, requestCall } from "../calls/store";
import { apiErrorText } from "../errors";
import { ErrorLine } from "./Note";
import "./calls.css";

const PAGE = 10;

export function CallButtons({ conversationId, me }: { conversationId: string; me: string }) {
  const [inCall, setInCall] = useState(currentCall());
  useEffect(() => onCurrentCall(setInCall), []);
  return (
    <div class="call-actions">
      <button type="button" class="secondary" disabled={inCall !== null} onClick={() => requestCall({ conversationId, kind: "audio" })}>
        Call
      </button>
      <button type="button" class="secondary" disabled={inCall !== null} onClick={() => requestCall({ conversationId, kind: "video" })}>
        Video call
      </button>
      <CallHistory conversationId={conversationId} me={me} refresh={inCall} />
    </div>
  );
}

function when(at: string): string {
  return new Date(at).toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

export function CallHistory({ conversationId, me, refresh }: { conversationId: string; me: string; refresh: unknown }) {
  const [open, setOpen] = useState(false);
  const [calls, setCalls] = useState<Call[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function load(after: string | null) {
    setLoading(true);
    setError(null);
    try {
      const page = await api((headers) =>
        http.GET("/v1/calls", {
          headers,
          params: { query: { conversation_id: conversationId, limit: PAGE, ...(after ? { cursor: after } : {}) } },
        }),
      );
      setCalls((cur) => (after ? [...cur, ...page.items.filter((c) => !cur.some((x) => x.id === c.id))] : page.items));
      setCursor(page.next_cursor ?? null);
    } catch (e) {
      setError(apiErrorText(e, "The call history could not be loaded."));
    } finally {
      setLoading(false);
    }
  }

  /** A participant may read the recording: fetch a short-lived signed URL and let the browser save it. */
  async function download(fileId: string) {
    setError(null);
    try {
      const link = await api((headers) => http.GET("/v1/files/{id}/download", { headers, params: { path: { id: fileId } } }));
      const a = document.createElement("a");
      a.href = link.download_url;
      a.download = "";
      a.rel = "noopener";
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      setError(apiErrorText(e, "The recording could not be downloaded."));
    }
  }

  // Fresh when opened, and when a call of this tab starts or ends.
  useEffect(() => {
    if (open) void load(null);
  }, [open, conversationId, refresh]);

  return (
    <details class="call-history" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>Call history</summary>
      <div class="call-history-panel">
      <ErrorLine text={error} />
      <ul aria-label="Call history">
        {calls.map((c) => (
          <li key={c.id}>
            <span>{historyLine(c, me)}</span>{" "}
            <time class="meta" dateTime={c.created_at}>
              {when(c.created_at)}
            </time>
            {c.recordings.length > 0 && (
              <span class="tag">{c.recordings.length === 1 ? "1 recording" : `${c.recordings.length} recordings`}</span>
            )}
            {c.recordings.map((r) =>
              r.file_id ? (
                <button
                  key={r.file_id}
                  type="button"
                  class="link"
                  onClick={() => void download(r.file_id!)}
                  aria-label={`Download recording of ${when(r.started_at)}`}
                >
                  Download recording
                </button>
              ) : null,
            )}
            {c.ended_at && <CallQuality callId={c.id} />}
          </li>
        ))}
      </ul>
      {open && !loading && calls.length === 0 && !error && <p class="hint">No calls yet.</p>}
      {cursor && (
        <button type="button" class="secondary" disabled={loading} onClick={() => void load(cursor)}>
          Load older calls
        </button>
      )}
      </div>
    </details>
  );
}
