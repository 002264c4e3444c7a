// The signed-in app: header, conversation list, the open conversation, and the one realtime
// socket whose events both of them follow.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { allPages } from "../api/pages";
import { type Conversation, type Message, api, http } from "../api/client";
import { type ConnectionState, Realtime, type RealtimeEvent } from "../realtime";
import { type Route, navigate } from "../router";
import { type Session, forget } from "../session";
import { lastActivity } from "../format";
import { CallLayer } from "./CallLayer";
import { ConversationView } from "./ConversationView";
import { Drive } from "./Drive";
import { NewConversation } from "./NewConversation";
import { Notifications } from "./Notifications";
import { Search } from "./Search";
import { Settings } from "./Settings";
import { Admin } from "./Admin";
import { TopBar } from "./TopBar";
import { Assistant } from "./Assistant";
import { apiErrorText } from "../errors";
import { ErrorLine } from "./Note";

export type EventListener = (e: RealtimeEvent) => void;

/** The name a conversation is shown under: its title, or for a direct one the other member. */
export function conversationName(c: Conversation): string {
  return c.title || c.peer?.display_name || (c.kind === "direct" ? "Direct conversation" : "Group");
}

/** At most this many pages of 100 are listed (the most recently active first). */
const MAX_CONVERSATION_PAGES = 10;

function loadConversations(): Promise<Conversation[]> {
  return allPages(
    (cursor) => api((headers) => http.GET("/v1/conversations", { headers, params: { query: { limit: 100, cursor } } })),
    MAX_CONVERSATION_PAGES,
  );
}

export function Chat({ session, route }: { session: Session; route: Route }) {
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [connection, setConnection] = useState<ConnectionState>("connecting");
  const [resyncs, setResyncs] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const listeners = useRef(new Set<EventListener>());
  const realtime = useRef<Realtime | null>(null);
  const openId = route.name === "conversation" ? route.id : null;
  const openIdRef = useRef(openId);
  openIdRef.current = openId;

  async function refreshList() {
    try {
      const list = await loadConversations();
      setConversations(list);
      setError(null);
    } catch (e) {
      setError(apiErrorText(e, "The conversations could not be loaded."));
    }
  }

  useEffect(() => {
    const rt = new Realtime({
      event: (e) => {
        onListEvent(e);
        for (const l of listeners.current) l(e);
      },
      resync: () => {
        // What arrived while the socket was down: the list's counts and the open history.
        void refreshList();
        setResyncs((n) => n + 1);
      },
      state: setConnection,
      sessionEnded: forget,
    });
    realtime.current = rt;
    rt.start();
    return () => rt.stop();
  }, [session.sessionId]);

  function onListEvent(e: RealtimeEvent) {
    if (e.type === "message.created") {
      const m = e.data as Message;
      setConversations((list) => {
        const c = list.find((x) => x.id === m.conversation_id);
        if (!c) {
          // A conversation this list has not seen yet (someone just added us).
          void refreshList();
          return list;
        }
        const mine = m.sender_id === session.user.id;
        const open = openIdRef.current === c.id && document.visibilityState === "visible";
        const updated: Conversation = {
          ...c,
          last_message_seq: Math.max(c.last_message_seq, m.seq),
          last_activity_at: m.created_at,
          unread_count: mine || open ? c.unread_count : c.unread_count + 1,
        };
        return [updated, ...list.filter((x) => x.id !== c.id)];
      });
    } else if (e.type === "member.added" || e.type === "member.removed" || e.type === "conversation.updated") {
      void refreshList();
    }
  }

  const nameOf = (id: string) => {
    const c = conversations.find((x) => x.id === id);
    return c ? conversationName(c) : undefined;
  };
  const subscribe = (l: EventListener) => {
    listeners.current.add(l);
    return () => void listeners.current.delete(l);
  };

  const active = useMemo(() => conversations.find((c) => c.id === openId) ?? null, [conversations, openId]);

  function markedRead(id: string) {
    setConversations((list) => list.map((c) => (c.id === id ? { ...c, unread_count: 0 } : c)));
  }

  return (
    <div class={`shell${openId || route.name !== "home" ? " has-open" : ""}`}>
      <TopBar
        session={session}
        route={route}
        connection={connection}
        openId={openId}
        subscribe={subscribe}
        resyncs={resyncs}
        nameOf={nameOf}
        onError={setError}
      />
      <nav class="sidebar" aria-label="Conversation list">
        <Search
          nameOf={(id) => {
            const c = conversations.find((x) => x.id === id);
            return c ? conversationName(c) : "A conversation";
          }}
        />
        <NewConversation
          me={session.user.id}
          onCreated={(c) => {
            void refreshList();
            navigate({ name: "conversation", id: c.id });
          }}
        />
        <ErrorLine text={error} />
        <ul class="conversations" aria-label="Conversations">
          {conversations.map((c) => {
            const name = conversationName(c);
            const unread = c.unread_count > 0 ? `, ${c.unread_count} unread` : "";
            return (
              <li key={c.id} aria-label={name + unread} class={c.id === openId ? "current" : undefined}>
                <a
                  href={`/c/${c.id}`}
                  aria-current={c.id === openId ? "page" : undefined}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate({ name: "conversation", id: c.id });
                  }}
                >
                  <span class="name">{name}</span>
                  <time class="when" dateTime={c.last_activity_at}>
                    {lastActivity(c.last_activity_at)}
                  </time>
                  {c.encrypted && <span class="tag">Encrypted</span>}
                  {c.unread_count > 0 && (
                    <span class="badge">
                      {c.unread_count}
                      <span class="visually-hidden"> unread</span>
                    </span>
                  )}
                </a>
              </li>
            );
          })}
        </ul>
        {conversations.length === 0 && !error && <p class="hint">No conversations yet. Start one above.</p>}
      </nav>
      <main class="content">
        {route.name === "settings" ? (
          <Settings session={session} />
        ) : route.name === "admin" ? (
          <Admin session={session} />
        ) : route.name === "assistant" ? (
          <Assistant />
        ) : route.name === "notifications" ? (
          <Notifications subscribe={subscribe} nameOf={nameOf} />
        ) : route.name === "drive" || route.name === "drive-shared" ? (
          <Drive
            me={session.user.id}
            folder={route.name === "drive" ? route.folder : "shared"}
            conversations={conversations}
            conversationName={conversationName}
            subscribe={subscribe}
          />
        ) : openId ? (
          <ConversationView
            key={openId}
            id={openId}
            conversation={active}
            name={active ? conversationName(active) : ""}
            me={session.user.id}
            resyncs={resyncs}
            subscribe={(l) => {
              listeners.current.add(l);
              return () => listeners.current.delete(l);
            }}
            onRead={markedRead}
            realtime={realtime.current}
          />
        ) : (
          <p class="hint">Choose a conversation, or start a new one.</p>
        )}
      </main>
      <CallLayer
        session={session}
        realtime={realtime.current}
        resyncs={resyncs}
        subscribe={(l) => {
          listeners.current.add(l);
          return () => listeners.current.delete(l);
        }}
        conversationName={(id) => {
          const c = conversations.find((x) => x.id === id);
          return c ? conversationName(c) : "A conversation";
        }}
        conversationRole={(id) => conversations.find((x) => x.id === id)?.my_role}
      />
    </div>
  );
}
