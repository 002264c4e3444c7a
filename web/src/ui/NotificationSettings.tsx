// Settings → Notifications: push on this browser (permission, subscription with the server's
// VAPID key, registration with the API; and off again), the per-kind push/email switches and
// the email digest (`/v1/notifications/preferences`; each switch is saved as it changes), and
// security notices, which are always on.

import { useEffect, useState } from "preact/hooks";
import { type Schemas, api, http } from "../api/client";
import { type PushStatus, pushStatus, pushSupported, turnOffPush, turnOnPush } from "../push";
import { apiErrorText } from "../errors";
import { ErrorLine, NoteLine } from "./Note";
import "./notifications.css";

type Preferences = Schemas["PreferencesView"];

const KINDS: { kind: string; label: string }[] = [
  { kind: "message", label: "New messages" },
  { kind: "mention", label: "Mentions" },
  { kind: "call.missed", label: "Missed calls" },
  { kind: "call.scheduled", label: "Scheduled calls" },
  { kind: "file.shared", label: "Files shared with me" },
];

function PushOnThisBrowser() {
  const [status, setStatus] = useState<PushStatus | null>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);

  useEffect(() => {
    pushStatus().then(setStatus, (e) => {
      setStatus({ on: false, permission: pushSupported() ? Notification.permission : "unsupported" });
      setNote({ ok: false, text: apiErrorText(e, "This browser's push subscription could not be checked.") });
    });
  }, []);

  async function toggle(on: boolean) {
    setBusy(true);
    setNote(null);
    try {
      if (on) await turnOnPush();
      else await turnOffPush();
      setStatus({ on, permission: Notification.permission });
      setNote({ ok: true, text: on ? "Push notifications are on for this browser." : "Push notifications are off for this browser." });
    } catch (e) {
      setStatus({ on: !on && (status?.on ?? false), permission: Notification.permission });
      setNote({ ok: false, text: apiErrorText(e, on ? "Push notifications could not be turned on." : "Push notifications could not be turned off.") });
    } finally {
      setBusy(false);
    }
  }

  if (status?.permission === "unsupported") {
    return <p class="hint-small">This browser does not support push notifications.</p>;
  }
  return (
    <div class="stack">
      <p>
        {status === null
          ? "Checking this browser…"
          : status.on
            ? "Push notifications are on for this browser."
            : status.permission === "denied"
              ? "Notifications are blocked for this site in the browser's settings."
              : "Push notifications are off for this browser."}
      </p>
      <p class="hint-small">
        Pushes carry no message text: they say that something happened, and the app shows it when you open it.
      </p>
      {status && (
        <button type="button" class={status.on ? "secondary" : undefined} disabled={busy} onClick={() => void toggle(!status.on)}>
          {status.on ? "Turn off push notifications" : "Turn on push notifications"}
        </button>
      )}
      <NoteLine note={note} />
    </div>
  );
}

export function NotificationSettings() {
  const [prefs, setPrefs] = useState<Preferences | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState("");

  useEffect(() => {
    api((headers) => http.GET("/v1/notifications/preferences", { headers })).then(setPrefs, (e) =>
      setError(apiErrorText(e, "The notification preferences could not be loaded.")),
    );
  }, []);

  async function patch(body: Schemas["PreferencesPatchRequest"], what: string) {
    try {
      setPrefs(await api((headers) => http.PATCH("/v1/notifications/preferences", { headers, body })));
      setSaved(`Saved: ${what}.`);
      setError(null);
    } catch (e) {
      setError(apiErrorText(e, "The preference could not be saved."));
    }
  }

  return (
    <section aria-labelledby="notification-settings-heading" class="notification-settings">
      <h2 id="notification-settings-heading">Notifications</h2>
      <h3>Push on this browser</h3>
      <PushOnThisBrowser />
      <h3>What notifies you</h3>
      <ErrorLine text={error} />
      {prefs && (
        <>
          <table class="kinds">
            <caption class="visually-hidden">Push and email for each kind of notification</caption>
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">Push</th>
                <th scope="col">Email</th>
              </tr>
            </thead>
            <tbody>
              {KINDS.filter((k) => prefs.kinds[k.kind]).map(({ kind, label }) => {
                const sw = prefs.kinds[kind]!;
                return (
                  <tr key={kind}>
                    <th scope="row">{label}</th>
                    {(["push", "email"] as const).map((ch) => (
                      <td key={ch}>
                        <input
                          type="checkbox"
                          aria-label={`${label}: ${ch === "push" ? "push" : "email"}`}
                          checked={sw[ch]}
                          onChange={(e) => {
                            const on = e.currentTarget.checked;
                            void patch({ kinds: { [kind]: { [ch]: on } } }, `${label}, ${ch} ${on ? "on" : "off"}`);
                          }}
                        />
                      </td>
                    ))}
                  </tr>
                );
              })}
              <tr>
                <th scope="row">Security alerts</th>
                <td colSpan={2}>Always on (push and email)</td>
              </tr>
            </tbody>
          </table>
          <label class="inline">
            <input
              type="checkbox"
              checked={prefs.email_digest}
              onChange={(e) => {
                const on = e.currentTarget.checked;
                void patch({ email_digest: on }, `email digest ${on ? "on" : "off"}`);
              }}
            />
            Email digest of unread messages and mentions
          </label>
          <p class="hint-small">
            Messages and mentions are mailed only as a digest, while you are away. Mute a conversation from its header.
          </p>
        </>
      )}
      <p class="visually-hidden" role="status">
        {saved}
      </p>
    </section>
  );
}
