// Blocking (API.md §3): the list of blocked people in Settings (unblock, block by username), and
// "Block"/"Unblock" in a direct conversation. A block stops direct conversations, direct calls
// and direct messages in both directions; groups are unaffected.

import { useEffect, useState } from "preact/hooks";
import { allPages } from "../api/pages";
import { type Schemas, api, http } from "../api/client";
import { parseUsernames } from "../gaps";
import { errorText } from "../errors";
import { type Note, NoteLine } from "./Note";
import "./gaps.css";

type Profile = Schemas["ProfileView"];

function blockedList(): Promise<Profile[]> {
  return allPages((cursor) => api((headers) => http.GET("/v1/users/me/blocked", { headers, params: { query: { limit: 100, cursor } } })), 20);
}

export function block(id: string) {
  return api((headers) => http.POST("/v1/users/{id}/block", { headers, params: { path: { id } } }));
}

export function unblock(id: string) {
  return api((headers) => http.DELETE("/v1/users/{id}/block", { headers, params: { path: { id } } }));
}

/** Settings: who is blocked, with "Unblock", and a form to block someone by username. */
export function BlockedUsers({ me }: { me: string }) {
  const [rows, setRows] = useState<Profile[] | null>(null);
  const [name, setName] = useState("");
  const [note, setNote] = useState<Note>(null);

  async function load() {
    try {
      setRows(await blockedList());
    } catch (e) {
      setNote({ ok: false, text: errorText(e, "The blocked people could not be loaded.") });
    }
  }
  useEffect(() => void load(), []);

  async function add(e: Event) {
    e.preventDefault();
    const [want] = parseUsernames(name);
    if (!want) return;
    try {
      const page = await api((headers) => http.GET("/v1/users", { headers, params: { query: { q: want, limit: 20 } } }));
      const user = page.items.find((u) => u.username === want);
      if (!user) throw new Error(`No user is called “${want}”.`);
      if (user.id === me) throw new Error("You cannot block yourself.");
      await block(user.id);
      setName("");
      setNote({ ok: true, text: `Blocked @${user.username}.` });
      await load();
    } catch (err) {
      setNote({ ok: false, text: errorText(err, "The person could not be blocked.") });
    }
  }

  async function remove(p: Profile) {
    try {
      await unblock(p.id);
      setNote({ ok: true, text: `Unblocked @${p.username}.` });
      await load();
    } catch (err) {
      setNote({ ok: false, text: errorText(err, "The person could not be unblocked.") });
    }
  }

  return (
    <section aria-labelledby="blocked-heading">
      <h2 id="blocked-heading">Blocked people</h2>
      <p class="hint">A blocked person cannot start a direct conversation with you, call you or message you directly. Groups are not affected.</p>
      {rows && rows.length === 0 && <p>You have not blocked anyone.</p>}
      <ul class="gaps-list" aria-label="Blocked people">
        {(rows ?? []).map((p) => (
          <li key={p.id}>
            <span class="name">
              {p.display_name} <span class="meta">@{p.username}</span>
            </span>
            <button type="button" class="secondary" aria-label={`Unblock @${p.username}`} onClick={() => void remove(p)}>
              Unblock
            </button>
          </li>
        ))}
      </ul>
      <form class="gaps-inline" onSubmit={add}>
        <label>
          Username to block
          <input value={name} required maxLength={64} autocomplete="off" onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <button type="submit" class="secondary">
          Block
        </button>
      </form>
      <NoteLine note={note} />
    </section>
  );
}

/** A direct conversation's "Block @peer" / "Unblock @peer". */
export function BlockPeer({ peer }: { peer: { user_id: string; username: string } }) {
  const [blocked, setBlocked] = useState<boolean | null>(null);
  const [note, setNote] = useState<Note>(null);

  useEffect(() => {
    let live = true;
    void blockedList()
      .then((l) => live && setBlocked(l.some((p) => p.id === peer.user_id)))
      .catch(() => live && setBlocked(false));
    return () => {
      live = false;
    };
  }, [peer.user_id]);

  async function toggle() {
    try {
      if (blocked) {
        await unblock(peer.user_id);
        setBlocked(false);
        setNote({ ok: true, text: `Unblocked @${peer.username}.` });
      } else {
        if (!confirm(`Block @${peer.username}? They will not be able to message or call you directly.`)) return;
        await block(peer.user_id);
        setBlocked(true);
        setNote({ ok: true, text: `Blocked @${peer.username}.` });
      }
    } catch (e) {
      setNote({ ok: false, text: errorText(e, "That did not work.") });
    }
  }

  if (blocked === null) return null;
  return (
    <div class="gaps-block">
      <button type="button" class="secondary" onClick={() => void toggle()}>
        {blocked ? `Unblock @${peer.username}` : `Block @${peer.username}`}
      </button>
      <NoteLine note={note} />
    </div>
  );
}
