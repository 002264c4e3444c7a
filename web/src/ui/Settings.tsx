// The account: display name, password, and the sessions (end one, or sign out everywhere).

import { useEffect, useState } from "preact/hooks";
import { type Schemas, api, http } from "../api/client";
import { lastActivity } from "../format";
import { TwoFactor } from "./TwoFactor";
import { AvatarLink, DeleteAccount } from "./AccountExtras";
import { BlockedUsers } from "./Blocks";
import { MyPresence } from "./Presence";
import { PushDevices } from "./PushDevices";
import { AiOptIn } from "./AiControls";
import { NotificationSettings } from "./NotificationSettings";
import { type Session, forget, updateUser } from "../session";
import { BackToConversations } from "./BackLink";
import { apiErrorText } from "../errors";
import { ErrorLine, NoteLine } from "./Note";

type SessionRow = Schemas["SessionView"];

function Profile({ session }: { session: Session }) {
  const [name, setName] = useState(session.user.display_name);
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);

  async function save(e: Event) {
    e.preventDefault();
    try {
      const user = await api((headers) => http.PATCH("/v1/users/me", { headers, body: { display_name: name.trim() } }));
      updateUser(user);
      setNote({ ok: true, text: "Saved." });
    } catch (err) {
      setNote({ ok: false, text: apiErrorText(err, "The name could not be saved.") });
    }
  }

  return (
    <section aria-labelledby="profile-heading">
      <h2 id="profile-heading">Profile</h2>
      <form class="stack" onSubmit={save}>
        <p>
          Signed in as <strong>{session.user.username}</strong> ({session.user.email})
        </p>
        {!session.user.email_verified && <VerifyReminder />}
        <label>
          Display name
          <input required maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <NoteLine note={note} />
        <button type="submit">Save profile</button>
      </form>
    </section>
  );
}

function VerifyReminder() {
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);
  async function resend() {
    try {
      await api((headers) => http.POST("/v1/auth/email/resend", { headers }));
      setNote({ ok: true, text: "Sent. The mail's link verifies your address." });
    } catch (e) {
      setNote({ ok: false, text: apiErrorText(e, "The mail could not be sent.") });
    }
  }
  return (
    <div>
      <p>Your email address is not verified yet.</p>
      <button type="button" class="secondary" onClick={() => void resend()}>
        Send the verification mail again
      </button>
      <NoteLine note={note} />
    </div>
  );
}

function Password() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);

  async function change(e: Event) {
    e.preventDefault();
    try {
      await api((headers) =>
        http.POST("/v1/users/me/password", { headers, body: { current_password: current, new_password: next } }),
      );
      setCurrent("");
      setNext("");
      setNote({ ok: true, text: "Password changed. Your other sessions were signed out." });
    } catch (err) {
      setNote({ ok: false, text: apiErrorText(err, "The password could not be changed.") });
    }
  }

  return (
    <section aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <form class="stack" onSubmit={change}>
        <label>
          Current password
          <input type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        </label>
        <label>
          New password
          <input type="password" autocomplete="new-password" required minLength={12} value={next} onInput={(e) => setNext(e.currentTarget.value)} />
        </label>
        <NoteLine note={note} />
        <button type="submit">Change password</button>
      </form>
    </section>
  );
}

function Sessions() {
  const [rows, setRows] = useState<SessionRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function load() {
    try {
      setRows((await api((headers) => http.GET("/v1/auth/sessions", { headers, params: { query: { limit: 100 } } }))).items);
    } catch (e) {
      setError(apiErrorText(e, "The sessions could not be loaded."));
    }
  }

  useEffect(() => void load(), []);

  async function end(id: string) {
    try {
      await api((headers) => http.DELETE("/v1/auth/sessions/{id}", { headers, params: { path: { id } } }));
      await load();
    } catch (e) {
      setError(apiErrorText(e, "The session could not be ended."));
    }
  }

  async function everywhere() {
    try {
      await api((headers) => http.POST("/v1/auth/logout-all", { headers }));
      // This session ended too; its cookie is dead and is cleared by the next refresh.
      forget();
    } catch (e) {
      setError(apiErrorText(e, "Signing out everywhere failed."));
    }
  }

  return (
    <section aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Sessions</h2>
      <ErrorLine text={error} />
      <ul class="sessions" aria-label="Sessions">
        {(rows ?? []).map((s) => {
          const label = s.device_name || s.user_agent || "Unknown device";
          return (
            <li key={s.id}>
              <span class="name">
                {label}
                {s.current && <strong> (this browser)</strong>}
              </span>
              <span class="meta">
                {s.ip ?? "unknown address"} · last active {lastActivity(s.last_seen_at)}
              </span>
              {!s.current && (
                <button type="button" class="secondary" aria-label={`End session ${label}`} onClick={() => void end(s.id)}>
                  End
                </button>
              )}
            </li>
          );
        })}
      </ul>
      <button type="button" class="secondary" onClick={() => void everywhere()}>
        Sign out everywhere
      </button>
    </section>
  );
}

export function Settings({ session }: { session: Session }) {
  return (
    <div class="settings">
      <BackToConversations />
      <h1>Settings</h1>
      <Profile session={session} />
      <AvatarLink session={session} />
      <MyPresence me={session.user.id} />
      <Password />
      <TwoFactor user={session.user} />
      <Sessions />
      <AiOptIn />
      <NotificationSettings />
      <PushDevices />
      <BlockedUsers me={session.user.id} />
      <DeleteAccount />
    </div>
  );
}
