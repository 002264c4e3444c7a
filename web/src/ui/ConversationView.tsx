// One open conversation: its history (newest page first, older pages on request), realtime
// updates, catch-up after a reconnect, the composer, and read receipts.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiFailure, type Conversation, type Member, type Message, api, http } from "../api/client";
import { catchUpSeq, mergeMessages, newClientMessageId, type PendingMessage, settlePending } from "../messages";
import type { Realtime, RealtimeEvent } from "../realtime";
import { navigate } from "../router";
import { typingLine } from "../format";
import { CallButtons } from "./CallButtons";
import { MessageItem } from "./MessageItem";
import { MessageText } from "./MessageText";

const PAGE = 50;

interface Props {
  id: string;
  conversation: Conversation | null;
  name: string;
  me: string;
  /** Bumped each time the socket (re)connects: fetch what it missed. */
  resyncs: number;
  subscribe: (l: (e: RealtimeEvent) => void) => () => void;
  onRead: (id: string) => void;
  realtime: Realtime | null;
}

function page(id: string, query: { before_seq?: number; after_seq?: number; limit: number }) {
  return api((headers) =>
    http.GET("/v1/conversations/{id}/messages", { headers, params: { path: { id }, query } }),
  );
}

/** A typing indicator that is not renewed fades after this long (a lost "stopped" frame). */
const TYPING_SHOWN_MS = 6000;
/** How often "typing" is repeated while the person keeps typing, and when it stops. */
const TYPING_RENEW_MS = 3000;

export function ConversationView({ id, conversation, name, me, resyncs, subscribe, onRead, realtime }: Props) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [pending, setPending] = useState<PendingMessage[]>([]);
  const [hasOlder, setHasOlder] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [senders, setSenders] = useState<ReadonlyMap<string, string>>(new Map());
  const [members, setMembers] = useState<Member[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [draft, setDraft] = useState("");
  const listRef = useRef<HTMLOListElement>(null);
  const stickToBottom = useRef(true);
  const readSeq = useRef(0);
  const messagesRef = useRef(messages);
  messagesRef.current = messages;
  const [typing, setTyping] = useState<ReadonlyMap<string, number>>(new Map());
  const typingSent = useRef(0);
  const typingStop = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  function typed() {
    const now = Date.now();
    if (now - typingSent.current > TYPING_RENEW_MS) {
      typingSent.current = now;
      realtime?.send("typing", { conversation_id: id, active: true });
    }
    clearTimeout(typingStop.current);
    typingStop.current = setTimeout(stoppedTyping, TYPING_RENEW_MS);
  }

  function stoppedTyping() {
    clearTimeout(typingStop.current);
    if (typingSent.current === 0) return;
    typingSent.current = 0;
    realtime?.send("typing", { conversation_id: id, active: false });
  }

  useEffect(() => stoppedTyping, [id]);

  // Others' typing indicators expire by themselves.
  useEffect(() => {
    if (typing.size === 0) return;
    const t = setInterval(() => {
      const now = Date.now();
      setTyping((m) => new Map([...m].filter(([, until]) => until > now)));
    }, 1000);
    return () => clearInterval(t);
  }, [typing.size > 0]);

  function merge(incoming: Message[]) {
    setMessages((cur) => mergeMessages(cur, incoming));
    setPending((p) => settlePending(p, incoming));
  }

  // The newest page and the members (for the senders' names).
  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const [newest, members] = await Promise.all([
          page(id, { limit: PAGE }),
          api((headers) =>
            http.GET("/v1/conversations/{id}/members", { headers, params: { path: { id }, query: { limit: 100 } } }),
          ),
        ]);
        if (!live) return;
        merge(newest.items);
        setHasOlder(newest.has_more);
        setSenders(new Map(members.items.map((m) => [m.user_id, m.display_name])));
        setMembers(members.items);
        setLoaded(true);
      } catch (e) {
        if (live) setError(e instanceof ApiFailure ? e.message : "This conversation could not be loaded.");
      }
    })();
    return () => {
      live = false;
    };
  }, [id]);

  // Realtime: this conversation's messages as they are created, edited and deleted.
  useEffect(
    () =>
      subscribe((e) => {
        if (e.type === "typing") {
          const t = e.data as { conversation_id: string; user_id: string; active: boolean };
          if (t.conversation_id !== id || t.user_id === me) return;
          setTyping((m) => {
            const next = new Map(m);
            if (t.active) next.set(t.user_id, Date.now() + TYPING_SHOWN_MS);
            else next.delete(t.user_id);
            return next;
          });
          return;
        }
        if (e.type !== "message.created" && e.type !== "message.updated" && e.type !== "message.deleted") return;
        const m = e.data as Message;
        if (m.conversation_id !== id) return;
        merge([m]);
        // A message ends its sender's typing.
        setTyping((cur) => {
          if (!cur.has(m.sender_id)) return cur;
          const next = new Map(cur);
          next.delete(m.sender_id);
          return next;
        });
      }),
    [id],
  );

  // After a reconnect: everything after the last message held without a gap.
  useEffect(() => {
    if (resyncs === 0 || !loaded) return;
    void (async () => {
      try {
        let after = catchUpSeq(messagesRef.current);
        for (;;) {
          const p = await page(id, { after_seq: after, limit: 100 });
          merge(p.items);
          const last = p.items[p.items.length - 1];
          if (!p.has_more || !last) break;
          after = last.seq;
        }
      } catch {
        // The next reconnect tries again; what is shown stays.
      }
    })();
  }, [resyncs]);

  // Keep the view at the newest message unless the reader scrolled up.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages, pending]);

  // Read receipts up to the newest message shown, while the page is visible (and once it is
  // visible again, for what arrived while it was not).
  const [visible, setVisible] = useState(document.visibilityState === "visible");
  useEffect(() => {
    const onChange = () => setVisible(document.visibilityState === "visible");
    document.addEventListener("visibilitychange", onChange);
    return () => document.removeEventListener("visibilitychange", onChange);
  }, []);
  useEffect(() => {
    const last = messages[messages.length - 1];
    if (!last || last.seq <= readSeq.current || document.visibilityState !== "visible") return;
    readSeq.current = last.seq;
    void api((headers) =>
      http.POST("/v1/conversations/{id}/read", { headers, params: { path: { id } }, body: { seq: last.seq } }),
    )
      .then(() => onRead(id))
      .catch(() => {
        // Not recorded: try again with the next message or visit.
        readSeq.current = 0;
      });
  }, [messages, visible]);

  async function leave() {
    if (!confirm("Leave this conversation? You will no longer see its messages.")) return;
    try {
      await api((headers) =>
        http.DELETE("/v1/conversations/{id}/members/{user_id}", { headers, params: { path: { id, user_id: me } } }),
      );
      navigate({ name: "home" });
    } catch (e) {
      setError(e instanceof ApiFailure ? e.message : "You could not leave this conversation.");
    }
  }

  async function loadOlder() {
    const first = messages[0];
    if (!first) return;
    stickToBottom.current = false;
    try {
      const p = await page(id, { before_seq: first.seq, limit: PAGE });
      merge(p.items);
      setHasOlder(p.has_more);
    } catch (e) {
      setError(e instanceof ApiFailure ? e.message : "Older messages could not be loaded.");
    }
  }

  async function send(p: PendingMessage) {
    try {
      const m = await api((headers) =>
        http.POST("/v1/conversations/{id}/messages", {
          headers,
          params: { path: { id } },
          body: { client_message_id: p.client_message_id, content: p.content },
        }),
      );
      merge([m]);
    } catch (e) {
      setPending((list) => list.map((x) => (x.client_message_id === p.client_message_id ? { ...x, failed: true } : x)));
      setError(e instanceof ApiFailure ? e.message : "The message could not be sent.");
    }
  }

  function submit(e?: Event) {
    e?.preventDefault();
    const content = draft.trim();
    if (!content) return;
    const p = { client_message_id: newClientMessageId(), content, failed: false };
    setPending((list) => [...list, p]);
    setDraft("");
    stoppedTyping();
    setError(null);
    stickToBottom.current = true;
    void send(p);
  }

  function retry(p: PendingMessage) {
    setPending((list) => list.map((x) => (x === p ? { ...x, failed: false } : x)));
    // The same client_message_id: if the first try did reach the server, this is no duplicate.
    void send(p);
  }

  const encrypted = conversation?.encrypted ?? false;
  return (
    <section class="conversation" aria-label={name || "Conversation"}>
      <header class="conversation-header">
        {/* Phones show the list or the conversation: this is the way back. */}
        <a
          class="back"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate({ name: "home" });
          }}
        >
          All conversations
        </a>
        <h2>{name}</h2>
        <CallButtons conversationId={id} me={me} />
        {conversation?.kind === "group" && (
          <details class="members">
            <summary>Members ({conversation.members_count})</summary>
            <ul aria-label="Members">
              {members.map((m) => (
                <li key={m.user_id}>
                  {m.display_name} <span class="meta">@{m.username}</span>
                  {m.role !== "member" && <span class="tag">{m.role}</span>}
                </li>
              ))}
            </ul>
            <button type="button" class="secondary" onClick={() => void leave()}>
              Leave conversation
            </button>
          </details>
        )}
      </header>
      {hasOlder && (
        <button type="button" class="secondary older" onClick={() => void loadOlder()}>
          Load older messages
        </button>
      )}
      <ol
        class="messages"
        aria-label="Messages"
        ref={listRef}
        onScroll={(e) => {
          const el = e.currentTarget;
          stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {messages.map((m) => (
          <MessageItem
            key={m.id}
            message={m}
            sender={senders.get(m.sender_id) ?? "Someone"}
            mine={m.sender_id === me}
            onChanged={(changed) => merge([changed])}
            onError={setError}
          />
        ))}
        {pending.map((p) => (
          <li key={p.client_message_id} class="mine pending">
            <span class="sender">You</span> <span class="state">{p.failed ? "Not sent" : "Sending…"}</span>
            <p class="text">
              <MessageText text={p.content} />
            </p>
            {p.failed && (
              <button type="button" class="secondary" onClick={() => retry(p)}>
                Retry
              </button>
            )}
          </li>
        ))}
      </ol>
      {loaded && messages.length === 0 && pending.length === 0 && <p class="hint">No messages yet. Say hello.</p>}
      <p class="typing" role="status">
        {typingLine([...typing.keys()].map((u) => senders.get(u) ?? "Someone"))}
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {encrypted ? (
        <p class="hint">
          This conversation is end-to-end encrypted. Reading and writing it needs a client that supports
          encryption; the web app does not yet.
        </p>
      ) : (
        <form class="composer" onSubmit={submit}>
          <textarea
            aria-label="Message"
            rows={2}
            maxLength={10000}
            value={draft}
            onInput={(e) => {
              setDraft(e.currentTarget.value);
              typed();
            }}
            onKeyDown={(e) => {
              // Enter sends; Shift+Enter (or an IME composing) makes a new line.
              if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
            }}
          />
          <button type="submit">Send</button>
        </form>
      )}
    </section>
  );
}
