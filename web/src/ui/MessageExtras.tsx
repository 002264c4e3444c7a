// What a message shows besides its text: the quote of the message it replies to, a poll,
// its reactions, and the "Reply" action. MessageItem renders these from `features`.

import type { Message } from "../api/client";
import { mentionsMe } from "../mentions";
import { pollOfMessage } from "../polls";
import type { MyReactions } from "../reactions";
import { PollCard } from "./PollCard";
import { Reactions } from "./Reactions";
import { ReplyQuote } from "./ReplyQuote";

export interface MessageFeatures {
  me: string;
  myReactions: MyReactions;
  /** A loaded message by id (a reply's original). */
  byId: (id: string) => Message | undefined;
  senderName: (userId: string) => string;
  /** Replies need the composer (not in encrypted conversations). */
  canReply: boolean;
  /** A group owner/admin (closes anyone's poll). */
  canModerate: boolean;
  onReply: (m: Message) => void;
  /** Bring a message into view (loading older pages if needed). */
  onShow: (id: string) => void;
  onChanged: (m: Message) => void;
  onReacted: (m: Message, emoji: string, mine: boolean) => void;
  onError: (text: string) => void;
}

export function isMentioned(m: Message, f: MessageFeatures | undefined): boolean {
  return f ? mentionsMe(m, f.me) : false;
}

export function QuoteOf({ message: m, f }: { message: Message; f: MessageFeatures }) {
  if (!m.reply_to) return null;
  const id = m.reply_to;
  const original = f.byId(id);
  return <ReplyQuote original={original} sender={original ? f.senderName(original.sender_id) : ""} onShow={() => f.onShow(id)} />;
}

export function MessageExtras({ message: m, f }: { message: Message; f: MessageFeatures }) {
  if (m.deleted) return null;
  const poll = pollOfMessage(m);
  return (
    <>
      {poll && (
        <PollCard
          message={m}
          poll={poll}
          me={f.me}
          canClose={m.sender_id === f.me || f.canModerate}
          onChanged={f.onChanged}
          onError={f.onError}
        />
      )}
      <div class="msg-tools">
        <Reactions message={m} mine={f.myReactions.get(m.id)} onReacted={f.onReacted} onError={f.onError} />
        {f.canReply && (
          <button type="button" class="link" onClick={() => f.onReply(m)}>
            Reply
          </button>
        )}
      </div>
    </>
  );
}
