// Presence (API.md §4): the people of a conversation shown as online, away or offline (GET
// /v1/presence, kept current by the realtime `presence` events), and one's own status in
// Settings (POST /v1/presence: online, away, or appear offline).

import { useEffect, useState } from "preact/hooks";
import { type Schemas, api, http } from "../api/client";
import { lastActivity } from "../format";
import { presenceLabel } from "../gaps";
import type { RealtimeEvent } from "../realtime";
import { apiErrorText } from "../errors";
import { NoteLine } from "./Note";
import "./gaps.css";

type Presence = Schemas["PresenceView"];
export type PresenceMap = ReadonlyMap<string, Presence>;
type Subscribe = (l: (e: RealtimeEvent) => void) => () => void;

/** The presence of `ids` (at most 100), updated live. */
export function usePresence(ids: string[], subscribe?: Subscribe): PresenceMap {
  const [map, setMap] = useState<PresenceMap>(new Map());
  const key = [...ids].sort().slice(0, 100).join(",");

  useEffect(() => {
    if (!key) return;
    let live = true;
    void api((headers) => http.GET("/v1/presence", { headers, params: { query: { user_ids: key, limit: 100 } } }))
      .then((p) => live && setMap(new Map(p.items.map((x) => [x.user_id, x]))))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [key]);

  useEffect(() => {
    if (!subscribe || !key) return;
    const wanted = new Set(key.split(","));
    return subscribe((e) => {
      if (e.type !== "presence") return;
      const d = e.data as { user_id: string; status: string };
      if (!wanted.has(d.user_id)) return;
      setMap((m) => {
        const next = new Map(m);
        const before = m.get(d.user_id);
        next.set(d.user_id, {
          user_id: d.user_id,
          status: d.status,
          last_seen_at: d.status === "offline" ? new Date().toISOString() : (before?.last_seen_at ?? null),
        });
        return next;
      });
    });
  }, [key]);

  return map;
}

export function PresenceText({ presence }: { presence: Presence | undefined }) {
  const label = presenceLabel(presence, (at) => lastActivity(at));
  if (!label) return null;
  return <span class={`gaps-presence gaps-presence-${presence?.status ?? "offline"}`}>{label}</span>;
}

/** Settings: "Your status". */
export function MyPresence({ me }: { me: string }) {
  const [status, setStatus] = useState("online");
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);

  useEffect(() => {
    void api((headers) => http.GET("/v1/presence", { headers, params: { query: { user_ids: me } } }))
      .then((p) => {
        const mine = p.items.find((x) => x.user_id === me);
        if (mine) setStatus(mine.status);
      })
      .catch(() => undefined);
  }, [me]);

  async function choose(next: string) {
    setStatus(next);
    try {
      await api((headers) => http.POST("/v1/presence", { headers, body: { status: next } }));
      setNote({ ok: true, text: next === "offline" ? "You appear offline." : next === "away" ? "You appear away." : "You appear online." });
    } catch (e) {
      setNote({ ok: false, text: apiErrorText(e, "The status could not be set.") });
    }
  }

  return (
    <section aria-labelledby="presence-heading">
      <h2 id="presence-heading">Status</h2>
      <label>
        Your status
        <select value={status} onChange={(e) => void choose(e.currentTarget.value)}>
          <option value="online">Online</option>
          <option value="away">Away</option>
          <option value="offline">Appear offline</option>
        </select>
      </label>
      <NoteLine note={note} />
    </section>
  );
}
