// Settings extras: the avatar link (PATCH /v1/users/me {avatar_url}; the page's CSP allows
// images from this origin only, so it is shown as a link, never loaded), and deleting the
// account (DELETE /v1/users/me {password}, after a confirmation).

import { useState } from "preact/hooks";
import { api, http } from "../api/client";
import { parseHttpsUrl } from "../gaps";
import { type Session, forget, updateUser } from "../session";
import { apiErrorText } from "../errors";
import { type Note, NoteLine } from "./Note";
import "./gaps.css";

export function AvatarLink({ session }: { session: Session }) {
  const [url, setUrl] = useState(session.user.avatar_url ?? "");
  const [note, setNote] = useState<Note>(null);
  const current = session.user.avatar_url;

  async function save(e: Event) {
    e.preventDefault();
    const p = parseHttpsUrl(url);
    if (!p.ok) return setNote({ ok: false, text: p.message });
    try {
      const user = await api((headers) => http.PATCH("/v1/users/me", { headers, body: { avatar_url: p.url } }));
      updateUser(user);
      setUrl(user.avatar_url ?? "");
      setNote({ ok: true, text: p.url ? "Avatar saved." : "Avatar removed." });
    } catch (err) {
      setNote({ ok: false, text: apiErrorText(err, "The avatar could not be saved.") });
    }
  }

  return (
    <section aria-labelledby="avatar-heading">
      <h2 id="avatar-heading">Avatar</h2>
      <form class="stack" onSubmit={save}>
        <p class="hint">A link (https) to your picture, shown by clients that display avatars. Leave it empty to remove it.</p>
        {current && (
          <p>
            Current avatar:{" "}
            <a href={current} target="_blank" rel="noopener noreferrer">
              {current}
            </a>
          </p>
        )}
        <label>
          Avatar link
          <input type="url" inputMode="url" maxLength={2048} value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
        </label>
        <NoteLine note={note} />
        <button type="submit">Save avatar</button>
      </form>
    </section>
  );
}

export function DeleteAccount() {
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const [sure, setSure] = useState(false);
  const [note, setNote] = useState<Note>(null);

  async function remove(e: Event) {
    e.preventDefault();
    if (!sure) return setNote({ ok: false, text: "Tick the box to confirm." });
    try {
      await api((headers) => http.DELETE("/v1/users/me", { headers, body: { password } }));
      setPassword("");
      // The account and every session are gone: back to the sign-in screen.
      forget();
    } catch (err) {
      setNote({ ok: false, text: apiErrorText(err, "The account could not be deleted.") });
    }
  }

  return (
    <section aria-labelledby="delete-account-heading" class="gaps-danger">
      <h2 id="delete-account-heading">Delete account</h2>
      {!open ? (
        <button type="button" class="secondary" onClick={() => setOpen(true)}>
          Delete my account…
        </button>
      ) : (
        <form class="stack" onSubmit={remove}>
          <p>This deletes your account and signs you out everywhere. It cannot be undone.</p>
          <label>
            Your password
            <input type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          <label class="gaps-check">
            <input type="checkbox" checked={sure} onChange={(e) => setSure(e.currentTarget.checked)} />
            I understand that this cannot be undone
          </label>
          <NoteLine note={note} />
          <div class="gaps-row">
            <button type="submit" class="danger">
              Delete my account permanently
            </button>
            <button type="button" class="secondary" onClick={() => { setOpen(false); setNote(null); }}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
