// "Manage group" in a group's header (API.md §4): owner/admin rename it, set its avatar link and
// add members; they remove members (never the owner); the owner changes roles (admin, member,
// or hands over ownership), sets the message retention and deletes the group.

import { useEffect, useState } from "preact/hooks";
import { allPages } from "../api/pages";
import { type Conversation, type Member, api, http } from "../api/client";
import { canManage, canRemove, isOwner, parseHttpsUrl, parseRetention, parseUsernames, roleChoices } from "../gaps";
import { navigate } from "../router";
import { type PresenceMap, PresenceText } from "./Presence";
import { errorText } from "../errors";
import { type Note, NoteLine } from "./Note";
import "./gaps.css";

interface Props {
  conversation: Conversation;
  me: string;
  members: Member[];
  onMembers: (m: Member[]) => void;
  presence?: PresenceMap;
}

export function loadMembers(id: string): Promise<Member[]> {
  return allPages(
    (cursor) =>
      api((headers) => http.GET("/v1/conversations/{id}/members", { headers, params: { path: { id }, query: { limit: 100, cursor } } })),
    50,
  );
}

export function GroupAdmin({ conversation, me, members, onMembers, presence }: Props) {
  const id = conversation.id;
  const [c, setC] = useState(conversation);
  const [title, setTitle] = useState(conversation.title ?? "");
  const [avatar, setAvatar] = useState(conversation.avatar_url ?? "");
  const [retention, setRetention] = useState(conversation.retention_days?.toString() ?? "");
  const [adding, setAdding] = useState("");
  const [note, setNote] = useState<Note>(null);

  // The conversation as it is now (the list may be older than a change made a moment ago).
  useEffect(() => {
    let live = true;
    void api((headers) => http.GET("/v1/conversations/{id}", { headers, params: { path: { id } } }))
      .then((x) => {
        if (!live) return;
        setC(x);
        setTitle(x.title ?? "");
        setAvatar(x.avatar_url ?? "");
        setRetention(x.retention_days?.toString() ?? "");
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [id, conversation.my_role]);

  const manage = canManage(c.kind, c.my_role);
  const owner = isOwner(c.kind, c.my_role);
  if (c.kind !== "group") return null;

  async function run(work: () => Promise<unknown>, done: string, failed: string) {
    try {
      await work();
      setNote({ ok: true, text: done });
    } catch (e) {
      setNote({ ok: false, text: errorText(e, failed) });
    }
  }

  async function patch(body: { title?: string | null; avatar_url?: string | null; retention_days?: number | null }) {
    const x = await api((headers) => http.PATCH("/v1/conversations/{id}", { headers, params: { path: { id } }, body }));
    setC(x);
  }

  function saveDetails(e: Event) {
    e.preventDefault();
    const a = parseHttpsUrl(avatar);
    if (!a.ok) return setNote({ ok: false, text: a.message });
    void run(() => patch({ title: title.trim() || null, avatar_url: a.url }), "Group details saved.", "The group could not be saved.");
  }

  function saveRetention(e: Event) {
    e.preventDefault();
    const r = parseRetention(retention);
    if (!r.ok) return setNote({ ok: false, text: r.message });
    void run(
      () => patch({ retention_days: r.days }),
      r.days === null ? "Messages are kept as long as the server keeps them." : `Messages older than ${r.days} days are deleted.`,
      "The retention could not be saved.",
    );
  }

  function add(e: Event) {
    e.preventDefault();
    const names = parseUsernames(adding);
    if (names.length === 0) return;
    void run(
      async () => {
        const ids: string[] = [];
        for (const want of names) {
          const page = await api((headers) => http.GET("/v1/users", { headers, params: { query: { q: want, limit: 20 } } }));
          const user = page.items.find((u) => u.username === want);
          if (!user) throw new Error(`No user is called “${want}”.`);
          ids.push(user.id);
        }
        await api((headers) =>
          http.POST("/v1/conversations/{id}/members", { headers, params: { path: { id } }, body: { user_ids: ids } }),
        );
        setAdding("");
        onMembers(await loadMembers(id));
      },
      names.length === 1 ? `Added @${names[0]}.` : `Added ${names.length} people.`,
      "The members could not be added.",
    );
  }

  function remove(m: Member) {
    if (!confirm(`Remove ${m.display_name} (@${m.username}) from the group?`)) return;
    void run(
      async () => {
        await api((headers) =>
          http.DELETE("/v1/conversations/{id}/members/{user_id}", { headers, params: { path: { id, user_id: m.user_id } } }),
        );
        onMembers(await loadMembers(id));
      },
      `Removed @${m.username}.`,
      "The member could not be removed.",
    );
  }

  function setRole(m: Member, role: string) {
    if (role === m.role) return;
    if (role === "owner" && !confirm(`Hand over ownership to ${m.display_name}? You will become an admin.`)) return;
    void run(
      async () => {
        await api((headers) =>
          http.PATCH("/v1/conversations/{id}/members/{user_id}", {
            headers,
            params: { path: { id, user_id: m.user_id } },
            body: { role },
          }),
        );
        onMembers(await loadMembers(id));
        setC(await api((headers) => http.GET("/v1/conversations/{id}", { headers, params: { path: { id } } })));
      },
      role === "owner" ? `${m.display_name} now owns the group.` : `@${m.username} is now ${role === "admin" ? "an admin" : "a member"}.`,
      "The role could not be changed.",
    );
  }

  function removeGroup() {
    if (!confirm("Delete this group for everyone? Its messages are deleted. This cannot be undone.")) return;
    void run(
      async () => {
        await api((headers) => http.DELETE("/v1/conversations/{id}", { headers, params: { path: { id } } }));
        navigate({ name: "home" });
      },
      "Group deleted.",
      "The group could not be deleted.",
    );
  }

  return (
    <details class="gaps-panel group-admin">
      <summary>{manage ? "Manage group" : "Group details"}</summary>
      <div class="gaps-body">
        {c.avatar_url && (
          <p>
            Avatar:{" "}
            <a href={c.avatar_url} target="_blank" rel="noopener noreferrer">
              {c.avatar_url}
            </a>
          </p>
        )}
        <p class="meta">
          Your role: {c.my_role}. Messages kept:{" "}
          {c.retention_days ? `${c.retention_days} days` : "as long as the server keeps them"}.
        </p>
        {manage && (
          <form class="stack" onSubmit={saveDetails}>
            <label>
              Group name
              <input maxLength={128} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
            </label>
            <label>
              Group avatar link
              <input type="url" maxLength={2048} value={avatar} onInput={(e) => setAvatar(e.currentTarget.value)} />
            </label>
            <button type="submit">Save group details</button>
          </form>
        )}
        {owner && (
          <form class="gaps-inline" onSubmit={saveRetention}>
            <label>
              Delete messages after (days)
              <input inputMode="numeric" maxLength={5} placeholder="server default" value={retention} onInput={(e) => setRetention(e.currentTarget.value)} />
            </label>
            <button type="submit" class="secondary">
              Save retention
            </button>
          </form>
        )}
        <h3>Members</h3>
        <ul class="gaps-list" aria-label="Group members">
          {members.map((m) => {
            const roles = roleChoices(c.my_role, me, m);
            return (
              <li key={m.user_id}>
                <span class="name">
                  {m.display_name} <span class="meta">@{m.username}</span>
                  {m.user_id === me && <span class="meta"> (you)</span>}
                  {m.user_id !== me && presence && (
                    <>
                      {" "}
                      <PresenceText presence={presence.get(m.user_id)} />
                    </>
                  )}
                </span>
                {roles.length > 0 ? (
                  <select aria-label={`Role of @${m.username}`} value={m.role} onChange={(e) => setRole(m, e.currentTarget.value)}>
                    {roles.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                ) : (
                  <span class="tag">{m.role}</span>
                )}
                {!c.encrypted && canRemove(c.my_role, me, m) && (
                  <button type="button" class="secondary" aria-label={`Remove @${m.username}`} onClick={() => remove(m)}>
                    Remove
                  </button>
                )}
              </li>
            );
          })}
        </ul>
        {manage && c.encrypted && (
          <p class="hint">
            Adding or removing members of an end-to-end encrypted group changes its keys: open it in a client
            that supports encryption.
          </p>
        )}
        {manage && !c.encrypted && (
          <form class="gaps-inline" onSubmit={add}>
            <label>
              Add people (usernames)
              <input required autocomplete="off" value={adding} onInput={(e) => setAdding(e.currentTarget.value)} />
            </label>
            <button type="submit" class="secondary">
              Add
            </button>
          </form>
        )}
        {owner && (
          <button type="button" class="danger" onClick={removeGroup}>
            Delete group
          </button>
        )}
        <NoteLine note={note} />
      </div>
    </details>
  );
}
