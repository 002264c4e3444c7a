// Settings: the devices that receive push notifications for this account (GET
// /v1/push/subscriptions: this browser, phones with the app), each removable (DELETE
// /v1/push/subscriptions/{id}). This browser's own push is switched in the notification settings.

import { useEffect, useState } from "preact/hooks";
import { type Schemas, api, http } from "../api/client";
import { lastActivity } from "../format";
import { apiErrorText } from "../errors";
import { NoteLine } from "./Note";
import "./gaps.css";

type Sub = Schemas["SubscriptionView"];

const KIND: Record<string, string> = { webpush: "Web browser", fcm: "Android app", apns: "iPhone or iPad app" };

export function PushDevices() {
  const [rows, setRows] = useState<Sub[] | null>(null);
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);

  async function load() {
    try {
      setRows((await api((headers) => http.GET("/v1/push/subscriptions", { headers, params: { query: { limit: 100 } } }))).items);
    } catch (e) {
      setNote({ ok: false, text: apiErrorText(e, "The push devices could not be loaded.") });
    }
  }
  useEffect(() => void load(), []);

  async function remove(s: Sub, label: string) {
    try {
      await api((headers) => http.DELETE("/v1/push/subscriptions/{id}", { headers, params: { path: { id: s.id } } }));
      setNote({ ok: true, text: `${label} no longer receives push notifications.` });
      await load();
    } catch (e) {
      setNote({ ok: false, text: apiErrorText(e, "The device could not be removed.") });
    }
  }

  return (
    <section aria-labelledby="push-devices-heading">
      <h2 id="push-devices-heading">Push devices</h2>
      {rows && rows.length === 0 && <p>No device receives push notifications.</p>}
      <ul class="gaps-list" aria-label="Push devices">
        {(rows ?? []).map((s) => {
          const label = s.device_name || KIND[s.kind] || s.kind;
          return (
            <li key={s.id}>
              <span class="name">
                {label} <span class="meta">· {KIND[s.kind] ?? s.kind} · since {lastActivity(s.created_at)}</span>
              </span>
              <button type="button" class="secondary" aria-label={`Remove push device ${label}`} onClick={() => void remove(s, label)}>
                Remove
              </button>
            </li>
          );
        })}
      </ul>
      <NoteLine note={note} />
    </section>
  );
}
