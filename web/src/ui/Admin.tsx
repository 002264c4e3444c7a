// Administration (API.md §11): the deployment's counts, the accounts (search, ban and unban,
// role, quota) and the audit log. Only for users whose role is admin; the server also refuses
// admins without 2FA while `admin_require_2fa` is on, which this screen explains.

import { useEffect, useState } from "preact/hooks";
import { type Schemas, api, http } from "../api/client";
import {
  BAN_DURATIONS,
  type BanDuration,
  type QuotaUnit,
  adminProblem,
  banState,
  banUntil,
  parseQuota,
  sinceParam,
} from "../admin";
import { lastActivity } from "../format";
import { formatSize } from "../size";
import type { Session } from "../session";
import { BackToConversations } from "./BackLink";
import { LoadMore, usePagedList } from "./PagedList";
import { ErrorLine, NoteLine } from "./Note";
import "./admin.css";

type Stats = Schemas["StatsView"];
type AdminUser = Schemas["AdminUserView"];
type AuditEntry = Schemas["AuditEntryView"];

// docs/operations.md "Audit log".
const AUDIT_EVENTS = [
  "account.registered",
  "account.created_by_admin",
  "account.deleted",
  "login.succeeded",
  "login.failed",
  "account.locked",
  "session.evicted",
  "session.ended",
  "session.refresh_reuse",
  "logout",
  "logout_all",
  "email.verified",
  "password.reset_requested",
  "password.reset",
  "password.changed",
  "2fa.enabled",
  "2fa.disabled",
  "account.role_changed",
  "quota.changed",
  "user.banned",
  "user.unbanned",
  "file.shared",
  "link.created",
  "push.subscribed",
  "ai.opted_in",
  "ai.opted_out",
];

export function Admin({ session }: { session: Session }) {
  const [stats, setStats] = useState<Stats | null>(null);
  const [gate, setGate] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  // The accounts the users list has shown, so that the audit log can name them.
  const [names, setNames] = useState<ReadonlyMap<string, string>>(new Map());
  const isAdmin = session.user.role === "admin";

  async function loadStats() {
    try {
      setStats(await api((headers) => http.GET("/v1/admin/stats", { headers })));
      setError(null);
    } catch (e) {
      const p = adminProblem(e);
      if (p.gate) setGate(p.text);
      else setError(p.text);
    }
  }

  useEffect(() => {
    if (isAdmin) void loadStats();
  }, [isAdmin]);

  if (!isAdmin || gate) {
    return (
      <div class="admin">
        <BackToConversations />
        <h1>Administration</h1>
        <p class="error" role="alert">
          {gate ?? "Not allowed: administration is for administrators only."}
        </p>
      </div>
    );
  }

  return (
    <div class="admin">
      <BackToConversations />
      <h1>Administration</h1>
      <ErrorLine text={error} />
      <section aria-labelledby="admin-stats-heading">
        <h2 id="admin-stats-heading">Statistics</h2>
        {stats ? (
          <dl class="admin-stats" aria-label="Statistics">
            <Stat label="Users" value={stats.users} />
            <Stat label="Conversations" value={stats.conversations} />
            <Stat label="Messages" value={stats.messages} />
            <Stat label="Files" value={stats.files} />
            <Stat label="Stored" value={formatSize(stats.bytes_stored)} />
            <Stat label="Live calls" value={stats.live_calls} />
            <Stat label="Open sockets" value={stats.sockets} />
            <Stat label="Sessions" value={stats.sessions} />
          </dl>
        ) : (
          <p class="hint" role="status">
            Loading…
          </p>
        )}
        <button type="button" class="secondary" onClick={() => void loadStats()}>
          Refresh statistics
        </button>
      </section>
      <Users
        me={session.user.id}
        onGate={setGate}
        onSeen={(list) => setNames((cur) => new Map([...cur, ...list.map((u) => [u.id, `@${u.username}`] as const)]))}
      />
      <AuditLog onGate={setGate} names={names} />
    </div>
  );
}

function Stat({ label, value }: { label: string; value: number | string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

/** A failed admin request: the whole screen closes (`onGate`, nothing shown here) or its text is shown. */
function adminGateOr(e: unknown, onGate: (text: string) => void): string | null {
  const p = adminProblem(e);
  if (!p.gate) return p.text;
  onGate(p.text);
  return null;
}

function Users({
  me,
  onGate,
  onSeen,
}: {
  me: string;
  onGate: (text: string) => void;
  onSeen: (users: AdminUser[]) => void;
}) {
  const [q, setQ] = useState("");
  const { rows, setRows, next, loading, error, load: loadPage } = usePagedList<AdminUser>((e) => adminGateOr(e, onGate));

  async function load(query: string, cursor?: string) {
    const page = await loadPage(
      (cursor) => api((headers) => http.GET("/v1/admin/users", { headers, params: { query: { q: query.trim() || undefined, limit: 20, cursor } } })),
      cursor,
    );
    if (page) onSeen(page.items);
  }

  useEffect(() => {
    void load("");
  }, []);

  function changed(u: AdminUser) {
    setRows((cur) => cur.map((x) => (x.id === u.id ? u : x)));
  }

  return (
    <section aria-labelledby="admin-users-heading">
      <h2 id="admin-users-heading">Users</h2>
      <form
        class="admin-search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          void load(q);
        }}
      >
        <label>
          Search users
          <input type="search" value={q} placeholder="Email, username or name" onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
        <button type="submit">Search</button>
      </form>
      <ErrorLine text={error} />
      <ul class="admin-users" aria-label="Users">
        {rows.map((u) => (
          <UserRow key={u.id} user={u} self={u.id === me} onChanged={changed} onGate={onGate} />
        ))}
      </ul>
      {!loading && rows.length === 0 && !error && <p class="hint">No users match.</p>}
      <LoadMore next={next} loading={loading} onMore={(cursor) => void load(q, cursor)} label="More users" />
    </section>
  );
}

function UserRow({
  user,
  self,
  onChanged,
  onGate,
}: {
  user: AdminUser;
  self: boolean;
  onChanged: (u: AdminUser) => void;
  onGate: (text: string) => void;
}) {
  const [reason, setReason] = useState("");
  const [duration, setDuration] = useState<BanDuration>("1d");
  const [quota, setQuota] = useState("");
  const [unit, setUnit] = useState<QuotaUnit>("MB");
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const who = `@${user.username}`;

  async function run(work: () => Promise<AdminUser>, done: string) {
    setBusy(true);
    try {
      onChanged(await work());
      setNote({ ok: true, text: done });
    } catch (e) {
      const p = adminProblem(e);
      if (p.gate) onGate(p.text);
      else setNote({ ok: false, text: p.text });
    } finally {
      setBusy(false);
    }
  }

  function ban(e: Event) {
    e.preventDefault();
    const why = reason.trim();
    if (!why) {
      setNote({ ok: false, text: "Give a reason for the ban." });
      return;
    }
    void run(
      () =>
        api((headers) =>
          http.POST("/v1/admin/users/{id}/ban", {
            headers,
            params: { path: { id: user.id } },
            body: { reason: why, until: banUntil(duration) },
          }),
        ),
      `${who} is banned; their sessions have ended.`,
    ).then(() => setReason(""));
  }

  function unban() {
    void run(
      () => api((headers) => http.POST("/v1/admin/users/{id}/unban", { headers, params: { path: { id: user.id } } })),
      `${who} is no longer banned.`,
    );
  }

  function patch(body: Schemas["AdminUserPatchRequest"], done: string) {
    void run(
      () => api((headers) => http.PATCH("/v1/admin/users/{id}", { headers, params: { path: { id: user.id } }, body })),
      done,
    );
  }

  function saveQuota(e: Event) {
    e.preventDefault();
    const bytes = parseQuota(quota, unit);
    if (bytes === null) {
      setNote({ ok: false, text: "The quota is a number of MB or GB, such as 500 or 1.5." });
      return;
    }
    patch({ quota: bytes }, `${who}'s quota is now ${formatSize(bytes)}.`);
  }

  const state = banState(user);
  return (
    <li aria-label={`${user.display_name} ${who}`}>
      <div class="admin-user-head">
        <span class="name">{user.display_name}</span> <span class="meta">{who}</span>
        {user.role === "admin" && <span class="tag">admin</span>}
        <span class={user.banned ? "tag banned" : "tag"}>{state}</span>
      </div>
      <p class="meta">
        {user.email}
        {user.email_verified ? "" : " (not verified)"} · 2FA {user.totp_enabled ? "on" : "off"} · storage{" "}
        {formatSize(user.storage_used)} of {formatSize(user.quota)} · last seen{" "}
        {user.last_seen_at ? lastActivity(user.last_seen_at) : "never"}
      </p>
      {user.banned && user.ban_reason && <p class="meta">Reason: {user.ban_reason}</p>}
      <details class="admin-manage">
        <summary>Manage {who}</summary>
        {user.banned ? (
          <button type="button" disabled={busy} aria-label={`Unban ${who}`} onClick={unban}>
            Unban
          </button>
        ) : (
          <form class="admin-inline" onSubmit={ban}>
            <label>
              Reason
              <input value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />
            </label>
            <label>
              Duration
              <select value={duration} onChange={(e) => setDuration(e.currentTarget.value as BanDuration)}>
                {BAN_DURATIONS.map((d) => (
                  <option key={d.value} value={d.value}>
                    {d.label}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit" disabled={busy || self} aria-label={`Ban ${who}`}>
              Ban
            </button>
          </form>
        )}
        <div class="admin-inline">
          <button
            type="button"
            class="secondary"
            disabled={busy || self}
            onClick={() =>
              patch(
                { role: user.role === "admin" ? "user" : "admin" },
                user.role === "admin" ? `${who} is no longer an administrator.` : `${who} is now an administrator.`,
              )
            }
          >
            {user.role === "admin" ? `Remove admin role from ${who}` : `Make ${who} an admin`}
          </button>
        </div>
        <form class="admin-inline" onSubmit={saveQuota}>
          <label>
            Storage quota
            <input inputMode="decimal" value={quota} placeholder={formatSize(user.quota)} onInput={(e) => setQuota(e.currentTarget.value)} />
          </label>
          <label>
            Unit
            <select value={unit} onChange={(e) => setUnit(e.currentTarget.value as QuotaUnit)}>
              <option value="MB">MB</option>
              <option value="GB">GB</option>
            </select>
          </label>
          <button type="submit" class="secondary" disabled={busy} aria-label={`Set quota of ${who}`}>
            Set quota
          </button>
        </form>
        {self && <p class="hint-small">You cannot ban yourself or change your own role here.</p>}
      </details>
      <NoteLine note={note} />
    </li>
  );
}

function AuditLog({ onGate, names }: { onGate: (text: string) => void; names: ReadonlyMap<string, string> }) {
  const who = (id: string) => {
    const n = names.get(id);
    return n ? `${n} (${id})` : id;
  };
  const [event, setEvent] = useState("");
  const [userId, setUserId] = useState("");
  const [since, setSince] = useState("");
  const { rows, next, loading, error, load: loadPage } = usePagedList<AuditEntry>((e) => adminGateOr(e, onGate));

  async function load(cursor?: string) {
    await loadPage(
      (cursor) =>
        api((headers) =>
          http.GET("/v1/admin/audit-log", {
            headers,
            params: {
              query: { event: event || undefined, user_id: userId.trim() || undefined, since: sinceParam(since), limit: 50, cursor },
            },
          }),
        ),
      cursor,
    );
  }

  useEffect(() => {
    void load();
  }, []);

  return (
    <section aria-labelledby="admin-audit-heading">
      <h2 id="admin-audit-heading">Audit log</h2>
      <form
        class="admin-filters"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <label>
          Event
          <select value={event} onChange={(e) => setEvent(e.currentTarget.value)}>
            <option value="">All events</option>
            {AUDIT_EVENTS.map((ev) => (
              <option key={ev} value={ev}>
                {ev}
              </option>
            ))}
          </select>
        </label>
        <label>
          User ID
          <input value={userId} placeholder="a user's id" onInput={(e) => setUserId(e.currentTarget.value)} />
        </label>
        <label>
          Since
          <input type="datetime-local" value={since} onInput={(e) => setSince(e.currentTarget.value)} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorLine text={error} />
      <ol class="admin-audit" aria-label="Audit log">
        {rows.map((r) => (
          <li key={r.id}>
            <span class="event">{r.event}</span>{" "}
            <time dateTime={r.created_at}>{new Date(r.created_at).toLocaleString()}</time>
            <span class="meta">
              {r.user_id ? ` user ${who(r.user_id)}` : ""}
              {r.actor_id ? ` · by ${who(r.actor_id)}` : ""}
              {r.ip ? ` · from ${r.ip}` : ""}
            </span>
            {Object.keys(r.details ?? {}).length > 0 && <code class="details">{JSON.stringify(r.details)}</code>}
          </li>
        ))}
      </ol>
      {!loading && rows.length === 0 && !error && <p class="hint">No entries.</p>}
      <LoadMore next={next} loading={loading} onMore={(cursor) => void load(cursor)} label="More entries" />
    </section>
  );
}
