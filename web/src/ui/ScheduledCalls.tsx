// "Scheduled calls" in a conversation's header (POST/GET /v1/calls/scheduled, PATCH/DELETE
// /v1/calls/scheduled/{id}): plan an audio or video call, see the upcoming ones, move or cancel
// one (its creator, or an owner/admin). Members are reminded at the start time.

import { useEffect, useState } from "preact/hooks";
import { type Conversation, type Schemas, api, http } from "../api/client";
import { scheduleTime, toLocalInput, upcoming } from "../gaps";
import { apiErrorText } from "../errors";
import { type Note, NoteLine } from "./Note";
import "./gaps.css";

type Scheduled = Schemas["ScheduledCallView"];
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function ScheduledCalls({ conversation, me, names }: { conversation: Conversation; me: string; names: ReadonlyMap<string, string> }) {
  const id = conversation.id;
  const [calls, setCalls] = useState<Scheduled[]>([]);
  const [at, setAt] = useState(() => toLocalInput(new Date(Date.now() + 3600_000)));
  const [kind, setKind] = useState("video");
  const [title, setTitle] = useState("");
  const [editing, setEditing] = useState<{ id: string; at: string } | null>(null);
  const [note, setNote] = useState<Note>(null);

  async function load() {
    try {
      const p = await api((headers) =>
        http.GET("/v1/calls/scheduled", { headers, params: { query: { conversation_id: id, limit: 100 } } }),
      );
      setCalls(upcoming(p.items));
    } catch (e) {
      setNote({ ok: false, text: apiErrorText(e, "The scheduled calls could not be loaded.") });
    }
  }
  useEffect(() => void load(), [id]);

  async function create(e: Event) {
    e.preventDefault();
    const t = scheduleTime(at);
    if (!t.ok) return setNote({ ok: false, text: t.message });
    try {
      await api((headers) =>
        http.POST("/v1/calls/scheduled", {
          headers,
          body: { conversation_id: id, kind, starts_at: t.iso, title: title.trim() || null },
        }),
      );
      setTitle("");
      setNote({ ok: true, text: `Call scheduled for ${when.format(new Date(t.iso))}.` });
      await load();
    } catch (err) {
      setNote({ ok: false, text: apiErrorText(err, "The call could not be scheduled.") });
    }
  }

  async function cancel(s: Scheduled) {
    if (!confirm(`Cancel the call of ${when.format(new Date(s.starts_at))}?`)) return;
    try {
      await api((headers) => http.DELETE("/v1/calls/scheduled/{id}", { headers, params: { path: { id: s.id } } }));
      setNote({ ok: true, text: "Call cancelled." });
      await load();
    } catch (err) {
      setNote({ ok: false, text: apiErrorText(err, "The call could not be cancelled.") });
    }
  }

  async function move(e: Event) {
    e.preventDefault();
    if (!editing) return;
    const t = scheduleTime(editing.at);
    if (!t.ok) return setNote({ ok: false, text: t.message });
    try {
      await api((headers) =>
        http.PATCH("/v1/calls/scheduled/{id}", { headers, params: { path: { id: editing.id } }, body: { starts_at: t.iso } }),
      );
      setEditing(null);
      setNote({ ok: true, text: `Call moved to ${when.format(new Date(t.iso))}.` });
      await load();
    } catch (err) {
      setNote({ ok: false, text: apiErrorText(err, "The call could not be moved.") });
    }
  }

  const mayChange = (s: Scheduled) => s.created_by === me || conversation.my_role === "owner" || conversation.my_role === "admin";

  return (
    <details class="gaps-panel scheduled-calls">
      <summary>Scheduled calls{calls.length > 0 ? ` (${calls.length})` : ""}</summary>
      <div class="gaps-body">
        {calls.length === 0 && <p class="meta">No call is planned.</p>}
        <ul class="gaps-list" aria-label="Scheduled calls">
          {calls.map((s) => {
            const label = `${s.title || (s.kind === "audio" ? "Audio call" : "Video call")}, ${when.format(new Date(s.starts_at))}`;
            return (
              <li key={s.id}>
                <span class="name">
                  {label}
                  <span class="meta"> · {s.kind} · by {s.created_by === me ? "you" : (names.get(s.created_by) ?? "someone")}</span>
                </span>
                {mayChange(s) && (
                  <span class="gaps-row">
                    <button type="button" class="secondary" aria-label={`Move ${label}`} onClick={() => setEditing({ id: s.id, at: toLocalInput(new Date(s.starts_at)) })}>
                      Move
                    </button>
                    <button type="button" class="secondary" aria-label={`Cancel ${label}`} onClick={() => void cancel(s)}>
                      Cancel
                    </button>
                  </span>
                )}
                {editing?.id === s.id && (
                  <form class="gaps-inline" onSubmit={move}>
                    <label>
                      New start
                      <input type="datetime-local" required value={editing.at} onInput={(e) => setEditing({ id: s.id, at: e.currentTarget.value })} />
                    </label>
                    <button type="submit" class="secondary">
                      Save time
                    </button>
                  </form>
                )}
              </li>
            );
          })}
        </ul>
        <form class="stack" onSubmit={create} aria-label="Schedule a call">
          <label>
            Starts at
            <input type="datetime-local" required value={at} onInput={(e) => setAt(e.currentTarget.value)} />
          </label>
          <label>
            Kind
            <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
              <option value="video">Video</option>
              <option value="audio">Audio</option>
            </select>
          </label>
          <label>
            Call title (optional)
            <input maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
          </label>
          <button type="submit">Schedule call</button>
        </form>
        <NoteLine note={note} />
      </div>
    </details>
  );
}
