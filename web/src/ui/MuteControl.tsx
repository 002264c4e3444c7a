// "Mute" in a conversation's header: for 1 hour, 8 hours, 1 week or until unmuted
// (`PUT /v1/conversations/{id}/mute {until?}`, `DELETE` to unmute). A muted conversation gives
// no `message` notifications, pushes or mails; mentions still do.

import { useEffect, useRef, useState } from "preact/hooks";
import { type Conversation, api, http } from "../api/client";
import { MUTE_CHOICES, type MuteDuration, isMuted, muteUntil, mutedLabel } from "../notifications";
import { apiErrorText } from "../errors";
import { ErrorLine } from "./Note";
import "./notifications.css";

export function MuteControl({ id, conversation }: { id: string; conversation: Conversation | null }) {
  const [mutedUntil, setMutedUntil] = useState<string | null | undefined>(conversation?.muted_until);
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const details = useRef<HTMLDetailsElement>(null);

  // The list the header got its conversation from may be older than a mute made here a moment
  // ago: the conversation itself says how it is now.
  useEffect(() => {
    let live = true;
    void api((headers) => http.GET("/v1/conversations/{id}", { headers, params: { path: { id } } }))
      .then((c) => {
        if (live) setMutedUntil(c.muted_until ?? null);
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [id]);

  // A timed mute ends by itself: look again when it does (at most once a minute).
  useEffect(() => {
    if (!isMuted(mutedUntil, now)) return;
    const t = setTimeout(() => setNow(Date.now()), Math.min(60_000, Date.parse(mutedUntil!) - now + 100));
    return () => clearTimeout(t);
  }, [mutedUntil, now]);

  const muted = isMuted(mutedUntil, now);

  async function mute(d: MuteDuration) {
    try {
      const until = muteUntil(d, Date.now());
      const c = await api((headers) =>
        http.PUT("/v1/conversations/{id}/mute", { headers, params: { path: { id } }, body: until ? { until } : {} }),
      );
      setMutedUntil(c.muted_until ?? null);
      setNow(Date.now());
      setError(null);
      if (details.current) details.current.open = false;
    } catch (e) {
      setError(apiErrorText(e, "The conversation could not be muted."));
    }
  }

  async function unmute() {
    try {
      const c = await api((headers) => http.DELETE("/v1/conversations/{id}/mute", { headers, params: { path: { id } } }));
      setMutedUntil(c.muted_until ?? null);
      setError(null);
      if (details.current) details.current.open = false;
    } catch (e) {
      setError(apiErrorText(e, "The conversation could not be unmuted."));
    }
  }

  return (
    <div class="mute">
      <details
        ref={details}
        onKeyDown={(e) => {
          // Escape closes the menu and returns to its summary, as a menu button would.
          if (e.key === "Escape" && details.current?.open) {
            details.current.open = false;
            details.current.querySelector("summary")?.focus();
          }
        }}
      >
        <summary>{muted ? "Muted" : "Mute"}</summary>
        <div class="mute-menu">
          {muted ? (
            <button type="button" class="secondary" onClick={() => void unmute()}>
              Unmute
            </button>
          ) : (
            <ul aria-label="Mute for">
              {MUTE_CHOICES.map((c) => (
                <li key={c.value}>
                  <button type="button" class="secondary" onClick={() => void mute(c.value)}>
                    {c.label}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      </details>
      <span class="mute-state" role="status">
        {mutedLabel(mutedUntil, now)}
      </span>
      <ErrorLine text={error} />
    </div>
  );
}
