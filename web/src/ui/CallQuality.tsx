// "Quality" of a past call in the call history (GET /v1/calls/{id}/quality): the samples the
// participants' apps reported (round trip, jitter, packet loss, bitrate), for the call and for
// each participant.

import { useState } from "preact/hooks";
import { type Schemas, api, http } from "../api/client";
import { qualityLines } from "../gaps";
import { apiErrorText } from "../errors";
import "./gaps.css";

type Summary = Schemas["QualitySummary"];

export function CallQuality({ callId }: { callId: string }) {
  const [summary, setSummary] = useState<Summary | null>(null);
  const [names, setNames] = useState<ReadonlyMap<string, string>>(new Map());
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function toggle() {
    if (open) return setOpen(false);
    setOpen(true);
    try {
      const q = await api((headers) => http.GET("/v1/calls/{id}/quality", { headers, params: { path: { id: callId } } }));
      setSummary(q);
      setError(null);
      const ids = [...new Set(q.participants.map((p) => p.user_id))];
      const profiles = await Promise.all(
        ids.map((id) => api((headers) => http.GET("/v1/users/{id}", { headers, params: { path: { id } } })).catch(() => null)),
      );
      setNames(new Map(profiles.filter((p) => p !== null).map((p) => [p.id, p.display_name])));
    } catch (e) {
      setError(apiErrorText(e, "The call quality could not be loaded."));
    }
  }

  return (
    <span class="call-quality">
      <button type="button" class="link" aria-expanded={open} onClick={() => void toggle()}>
        Quality
      </button>
      {open && error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
      {open && summary && (
        <span class="gaps-quality" role="group" aria-label="Call quality">
          {summary.call.samples === 0 ? (
            <span class="meta">No quality samples were reported for this call.</span>
          ) : (
            <>
              <span>Whole call: {qualityLines(summary.call)}</span>
              {summary.participants.map((p) => (
                <span key={p.session_id}>
                  {names.get(p.user_id) ?? "A participant"}: {qualityLines(p)}
                </span>
              ))}
            </>
          )}
        </span>
      )}
    </span>
  );
}
