// Starts a direct conversation (one username) or a group (several, or a title).

import { useState } from "preact/hooks";
import { ApiFailure, type Conversation, api, http } from "../api/client";
import { ErrorLine } from "./Note";

async function findUser(username: string): Promise<string> {
  const want = username.trim().replace(/^@/, "").toLowerCase();
  const page = await api((headers) => http.GET("/v1/users", { headers, params: { query: { q: want, limit: 20 } } }));
  const user = page.items.find((u) => u.username === want);
  if (!user) throw new Error(`No user is called “${want}”.`);
  return user.id;
}

export function NewConversation({ me, onCreated }: { me: string; onCreated: (c: Conversation) => void }) {
  const [usernames, setUsernames] = useState("");
  const [title, setTitle] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const names = usernames.split(/[\s,]+/).filter(Boolean);
      const ids = (await Promise.all(names.map(findUser))).filter((id) => id !== me);
      if (ids.length === 0) throw new Error("Name at least one other person.");
      const group = ids.length > 1 || title.trim() !== "";
      const c = await api((headers) =>
        http.POST("/v1/conversations", {
          headers,
          body: group
            ? { kind: "group", member_ids: ids, title: title.trim() || null }
            : { kind: "direct", member_ids: ids },
        }),
      );
      setUsernames("");
      setTitle("");
      setOpen(false);
      onCreated(c);
    } catch (err) {
      setError(err instanceof ApiFailure || err instanceof Error ? err.message : "Something went wrong.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <details class="new-conversation" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>New conversation</summary>
      <form onSubmit={submit}>
        <label>
          Usernames
          <input
            name="usernames"
            required
            placeholder="alice, bob"
            value={usernames}
            onInput={(e) => setUsernames(e.currentTarget.value)}
          />
        </label>
        <label>
          Group title (optional)
          <input name="title" maxLength={100} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <ErrorLine text={error} />
        <button type="submit" disabled={busy}>
          Start conversation
        </button>
      </form>
    </details>
  );
}
