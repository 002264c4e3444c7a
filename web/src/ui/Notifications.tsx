// The notifications: a "Notifications" link in the top bar with the unread count (kept live by
// the realtime `notification` events), and the list at /notifications (newest first, an
// "Unread only" filter, paging by next_cursor, "Mark all as read"; a click marks one read and
// opens what it is about). Every text is built from the kind and ids, rendered as text.

import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, http } from "../api/client";
import { lastActivity } from "../format";
import { type AppNotification, type Names, mentionedUsers, notificationTarget, notificationText, unreadBadge } from "../notifications";
import {
  dispatchUnread,
  lookUpUsers,
  markAllRead,
  markRead,
  readConversation,
  reloadUnread,
  resetNotifications,
  useNames,
  useUnread,
  userName,
} from "../notify-store";
import { listenToWorker, registerWorker, syncPush } from "../push";
import type { RealtimeEvent } from "../realtime";
import { navigate } from "../router";
import { BackToConversations } from "./BackLink";
import { apiErrorText } from "../errors";
import { ErrorLine } from "./Note";
import { useDocumentVisible } from "./visibility";
import "./notifications.css";

type Subscribe = (l: (e: RealtimeEvent) => void) => () => void;

function isNotification(x: unknown): x is AppNotification {
  const n = x as AppNotification | null;
  return !!n && typeof n.id === "string" && typeof n.kind === "string" && typeof n.created_at === "string";
}

interface BellProps {
  current: boolean;
  /** The open conversation: what is announced about its messages has been seen. */
  openId?: string | null;
  subscribe: Subscribe;
  /** Bumped on each socket (re)connect: events may have been missed, reload the count. */
  resyncs: number;
  nameOf: (conversationId: string) => string | undefined;
  /** Drawn before the words (the top bar's icon). */
  icon?: ComponentChildren;
}

/** The top bar's link; it also keeps the count and starts the service worker. */
export function NotificationBell({ current, openId, subscribe, resyncs, nameOf, icon }: BellProps) {
  const unread = useUnread();
  const badge = unreadBadge(unread);

  const visible = useDocumentVisible();
  useEffect(() => {
    if (openId && visible) void readConversation(openId);
  }, [openId, visible, unread]);

  useEffect(
    () =>
      subscribe((e) => {
        if (e.type === "notification" && isNotification(e.data)) dispatchUnread({ type: "arrived", notification: e.data });
      }),
    [],
  );
  useEffect(() => {
    void reloadUnread().catch(() => undefined);
  }, [resyncs]);
  useEffect(() => () => resetNotifications(), []);

  // The worker asks for conversation names and asks to navigate after a click.
  const names = useRef(nameOf);
  names.current = nameOf;
  useEffect(() => {
    void registerWorker().then(syncPush);
    return listenToWorker((id) => names.current(id));
  }, []);

  return (
    <a
      href="/notifications"
      class="navlink bell"
      title={badge ? `Notifications, ${badge} unread` : "Notifications"}
      aria-current={current ? "page" : undefined}
      onClick={(e) => {
        e.preventDefault();
        navigate({ name: "notifications" });
      }}
    >
      {icon}
      <span class="nav-label">Notifications</span>
      {badge && " "}
      {badge && (
        <span class="badge">
          {badge}
          <span class="visually-hidden"> unread</span>
        </span>
      )}
    </a>
  );
}

const PAGE = 20;

export function Notifications({ subscribe, nameOf }: { subscribe: Subscribe; nameOf: (id: string) => string | undefined }) {
  const [items, setItems] = useState<AppNotification[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  const unread = useUnread();
  useNames();
  // Events that arrive while the first page loads: its answer may predate them.
  const arrived = useRef<AppNotification[]>([]);

  const names: Names = { conversation: nameOf, user: userName };

  async function load(more: boolean) {
    if (!more) arrived.current = [];
    try {
      const page = await api((headers) =>
        http.GET("/v1/notifications", {
          headers,
          params: { query: { limit: PAGE, unread: unreadOnly || undefined, cursor: more ? (cursor ?? undefined) : undefined } },
        }),
      );
      const got = page.items as AppNotification[];
      lookUpUsers(got.flatMap(mentionedUsers));
      const fresh = arrived.current.filter((a) => !got.some((g) => g.id === a.id));
      setItems((cur) => (more ? [...cur, ...got.filter((n) => !cur.some((c) => c.id === n.id))] : [...fresh, ...got]));
      setCursor(page.next_cursor ?? null);
      setLoaded(true);
      setError(null);
    } catch (e) {
      setError(apiErrorText(e, "The notifications could not be loaded."));
    }
  }

  useEffect(() => {
    setLoaded(false);
    void load(false);
  }, [unreadOnly]);

  useEffect(
    () =>
      subscribe((e) => {
        if (e.type !== "notification" || !isNotification(e.data)) return;
        const n = e.data;
        lookUpUsers(mentionedUsers(n));
        arrived.current.push(n);
        setItems((cur) => (cur.some((c) => c.id === n.id) ? cur : [n, ...cur]));
      }),
    [],
  );

  async function open(n: AppNotification) {
    try {
      if (!n.read_at) {
        const read = await markRead(n.id);
        setItems((cur) => cur.map((c) => (c.id === n.id ? { ...c, read_at: read.read_at ?? new Date().toISOString() } : c)));
      }
    } catch (e) {
      setError(apiErrorText(e, "The notification could not be marked as read."));
      return;
    }
    const t = notificationTarget(n);
    if (t?.kind === "conversation") navigate({ name: "conversation", id: t.id });
    else if (t?.kind === "settings") navigate({ name: "settings" });
    // A file shared with me is listed under "Shared with me".
    else if (t?.kind === "file") navigate({ name: "drive-shared" });
  }

  async function allRead() {
    try {
      await markAllRead();
      const now = new Date().toISOString();
      setItems((cur) => (unreadOnly ? [] : cur.map((c) => (c.read_at ? c : { ...c, read_at: now }))));
      setCursor(unreadOnly ? null : cursor);
      setStatus("All notifications are marked as read.");
      setError(null);
    } catch (e) {
      setError(apiErrorText(e, "The notifications could not be marked as read."));
    }
  }

  const count = unread.ids.size;
  return (
    <section class="notifications" aria-labelledby="notifications-heading">
      <BackToConversations />
      <h1 id="notifications-heading">Notifications</h1>
      <div class="notifications-tools">
        <label class="inline">
          <input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly(e.currentTarget.checked)} />
          Unread only
        </label>
        <button type="button" class="secondary" disabled={count === 0 && !unread.more} onClick={() => void allRead()}>
          Mark all as read
        </button>
      </div>
      <p class="visually-hidden" role="status">
        {status}
      </p>
      <ErrorLine text={error} />
      <ul class="notification-list" aria-label="Notifications">
        {items.map((n) => {
          const text = notificationText(n, names);
          const target = notificationTarget(n);
          const body = (
            <>
              <span class="text">
                {!n.read_at && <span class="visually-hidden">Unread: </span>}
                {text}
              </span>
              <time class="when" dateTime={n.created_at}>
                {lastActivity(n.created_at)}
              </time>
              {!n.read_at && <span class="dot" aria-hidden="true" />}
            </>
          );
          return (
            <li key={n.id} class={n.read_at ? "read" : "unread"}>
              {target?.kind === "conversation" ? (
                <a
                  href={`/c/${target.id}`}
                  onClick={(e) => {
                    e.preventDefault();
                    void open(n);
                  }}
                >
                  {body}
                </a>
              ) : (
                <button type="button" class="item" onClick={() => void open(n)}>
                  {body}
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {loaded && items.length === 0 && <p class="hint">{unreadOnly ? "No unread notifications." : "No notifications yet."}</p>}
      {cursor && (
        <button type="button" class="secondary" onClick={() => void load(true)}>
          Load more
        </button>
      )}
    </section>
  );
}
