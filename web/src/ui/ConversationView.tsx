// One open conversation: its history (newest page first, older pages on request), realtime
// updates, catch-up after a reconnect, the composer, and read receipts.

import { useEffect, useReducer, useRef, useState } from "preact/hooks";
import { type Conversation, type Member, type Message, api, http } from "../api/client";
import { catchUpSeq, mergeMessages, newClientMessageId, type PendingMessage, settlePending } from "../messages";
import type { Realtime, RealtimeEvent } from "../realtime";
import { navigate } from "../router";
import { typingLine } from "../format";
import { Attach } from "./Attach";
import { CallButtons } from "./CallButtons";
import { MessageItem } from "./MessageItem";
import { MessageText } from "./MessageText";
import { ConversationAi } from "./AiControls";
import { MuteControl } from "./MuteControl";
import { MentionInput } from "./MentionInput";
import { MessageList, type Row } from "./MessageList";
import type { MessageFeatures } from "./MessageExtras";
import { NewPoll } from "./NewPoll";
import { ReplyBar } from "./ReplyQuote";
import { ConversationExtras } from "./ConversationExtras";
import { Receipts } from "./Receipts";
import { type ReactionEvent, myReactionsReducer } from "../reactions";
import { BackToConversations } from "./BackLink";
import { apiErrorText } from "../errors";
import { ErrorLine } from "./Note";
import { useDocumentVisible } from "./visibility";
import "./conversation-header.css";

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
  const stickToBottom = useRef(true);
  const readSeq = useRef(0);
  const messagesRef = useRef(messages);
  messagesRef.current = messages;
  const [typing, setTyping] = useState<ReadonlyMap<string, number>>(new Map());
  const typingSent = useRef(0);
  const typingStop = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const [myReactions, reacted] = useReducer(myReactionsReducer, new Map());
  const [jump, setJump] = useState<{ key: string; n: number } | null>(null);
  const loadingOlder = useRef(false);
  /** An older page failed: no more by scrolling, only by the button (no retry loop). */
  const olderFailed = useRef(false);
  const hasOlderRef = useRef(hasOlder);
  hasOlderRef.current = hasOlder;

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

  /** A change to one loaded message that is not a new state of it (reaction counts, poll counts). */
  function patch(messageId: string, change: (m: Message) => Message) {
    setMessages((cur) => cur.map((m) => (m.id === messageId ? change(m) : m)));
  }

  function merge(incoming: Message[]) {
    reacted({ type: "loaded", messages: incoming });
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
        if (live) setError(apiErrorText(e, "This conversation could not be loaded."));
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
        if (e.type === "reaction.updated") {
          const r = e.data as ReactionEvent;
          if (r.conversation_id !== id) return;
          reacted({ type: "event", event: r, me });
          patch(r.message_id, (m) => ({ ...m, reactions: r.reactions as unknown as Message["reactions"] }));
          return;
        }
        if (e.type === "poll.updated") {
          const p = e.data as { conversation_id: string; message_id: string; poll: unknown };
          if (p.conversation_id !== id) return;
          patch(p.message_id, (m) => ({ ...m, metadata: { ...m.metadata, poll: p.poll } as unknown as Message["metadata"] }));
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
        // Reactions and votes on what is shown may have changed too: the newest page, fresh.
        merge((await page(id, { limit: PAGE })).items);
      } catch {
        // The next reconnect tries again; what is shown stays.
      }
    })();
  }, [resyncs]);

  // Read receipts up to the newest message shown, while the page is visible (and once it is
  // visible again, for what arrived while it was not).
  const visible = useDocumentVisible();
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
      setError(apiErrorText(e, "You could not leave this conversation."));
    }
  }

  /** One older page (one at a time); false when there is none or it failed. */
  async function loadOlder(): Promise<boolean> {
    const first = messagesRef.current[0];
    if (!first || loadingOlder.current || !hasOlderRef.current) return false;
    loadingOlder.current = true;
    try {
      const p = await page(id, { before_seq: first.seq, limit: PAGE });
      messagesRef.current = mergeMessages(messagesRef.current, p.items);
      merge(p.items);
      hasOlderRef.current = p.has_more;
      setHasOlder(p.has_more);
      return p.items.length > 0;
    } catch (e) {
      // Not again by itself: the "Load older messages" button tries again.
      olderFailed.current = true;
      setError(apiErrorText(e, "Older messages could not be loaded."));
      return false;
    } finally {
      loadingOlder.current = false;
    }
  }

  /** Brings a message into view: a reply's original, older pages first if it is not loaded. */
  async function show(messageId: string) {
    for (let i = 0; i < 40 && !messagesRef.current.some((m) => m.id === messageId); i++) {
      if (!(await loadOlder())) break;
    }
    if (messagesRef.current.some((m) => m.id === messageId)) setJump((j) => ({ key: messageId, n: (j?.n ?? 0) + 1 }));
    else setError("The original message is no longer available.");
  }

  async function send(p: PendingMessage) {
    try {
      const m = await api((headers) =>
        http.POST("/v1/conversations/{id}/messages", {
          headers,
          params: { path: { id } },
          body: { client_message_id: p.client_message_id, content: p.content, reply_to: p.reply_to ?? null },
        }),
      );
      merge([m]);
    } catch (e) {
      setPending((list) => list.map((x) => (x.client_message_id === p.client_message_id ? { ...x, failed: true } : x)));
      setError(apiErrorText(e, "The message could not be sent."));
    }
  }

  function submit(e?: Event) {
    e?.preventDefault();
    const content = draft.trim();
    if (!content) return;
    const p = { client_message_id: newClientMessageId(), content, failed: false, reply_to: replyTo?.id ?? null };
    setPending((list) => [...list, p]);
    setDraft("");
    setReplyTo(null);
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
  const byId = new Map(messages.map((m) => [m.id, m]));
  const features: MessageFeatures = {
    me,
    myReactions,
    byId: (x) => byId.get(x),
    senderName: (u) => (u === me ? "You" : (senders.get(u) ?? "Someone")),
    canReply: !encrypted,
    canModerate: conversation?.kind === "group" && (conversation.my_role === "owner" || conversation.my_role === "admin"),
    onReply: (m) => {
      setReplyTo(m);
      document.getElementById(`composer-${id}`)?.focus();
    },
    onShow: (x) => void show(x),
    onChanged: (m) => merge([m]),
    onReacted: (m, emoji, mine) => {
      reacted({ type: "set", message_id: m.id, emoji, mine });
      merge([m]);
    },
    onError: setError,
  };
  const newest = Math.max(conversation?.last_message_seq ?? 0, messages[messages.length - 1]?.seq ?? 0);
  const rows: Row[] = [
    ...messages.map((m) => ({
      key: m.id,
      posinset: m.seq,
      render: (position: Parameters<Row["render"]>[0]) => (
        <MessageItem
          key={m.id}
          message={m}
          sender={senders.get(m.sender_id) ?? "Someone"}
          mine={m.sender_id === me}
          onChanged={(changed) => merge([changed])}
          onError={setError}
          features={features}
          position={position}
        />
      ),
    })),
    ...pending.map((p, i) => ({
      key: `pending-${p.client_message_id}`,
      posinset: newest + i + 1,
      render: (position: Parameters<Row["render"]>[0]) => (
        <li key={p.client_message_id} class="mine pending" {...position}>
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
      ),
    })),
  ];
  return (
    <section class="conversation" aria-label={name || "Conversation"}>
      <header class="conversation-header">
        {/* Phones show the list or the conversation: this is the way back. */}
        <BackToConversations />
        <h2>{name}</h2>
        <MuteControl id={id} conversation={conversation} />
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
        {conversation && <ConversationAi conversation={conversation} />}
        <ConversationExtras conversation={conversation} me={me} members={members} onMembers={setMembers} subscribe={subscribe} />
      </header>
      {hasOlder && (
        <button
          type="button"
          class="secondary older"
          onClick={() => {
            olderFailed.current = false;
            void loadOlder();
          }}
        >
          Load older messages
        </button>
      )}
      <MessageList
        rows={rows}
        setsize={newest + pending.length}
        hasOlder={hasOlder}
        onNearTop={() => {
          if (!olderFailed.current) void loadOlder();
        }}
        stick={stickToBottom}
        jump={jump}
      />
      {loaded && messages.length === 0 && pending.length === 0 && <p class="hint">No messages yet. Say hello.</p>}
      <Receipts id={id} me={me} newest={messages[messages.length - 1] ?? null} names={senders} subscribe={subscribe} />
      <p class="typing" role="status">
        {typingLine([...typing.keys()].map((u) => senders.get(u) ?? "Someone"))}
      </p>
      <ErrorLine text={error} />
      {!encrypted && (
        <div class="composer-extras">
          {replyTo && <ReplyBar original={replyTo} sender={features.senderName(replyTo.sender_id)} onCancel={() => setReplyTo(null)} />}
          <NewPoll conversationId={id} onCreated={(m) => { stickToBottom.current = true; merge([m]); }} />
        </div>
      )}
      {encrypted ? (
        <p class="hint">
          This conversation is end-to-end encrypted. Reading and writing it needs a client that supports
          encryption; the web app does not yet.
        </p>
      ) : (
        <form class="composer" onSubmit={submit}>
          <MentionInput
            id={`composer-${id}`}
            members={members}
            me={me}
            value={draft}
            onValue={setDraft}
            onTyped={typed}
            onKeyDown={(e) => {
              // Enter sends; Shift+Enter (or an IME composing) makes a new line.
              if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
              if (e.key === "Escape" && replyTo) setReplyTo(null);
            }}
          />
          <Attach conversationId={id} onSent={(m) => merge([m])} onError={setError} />
          <button type="submit">Send</button>
        </form>
      )}
    </section>
  );
}
