// Replies: the quoted snippet of the original inside a reply (a button that brings the
// original into view), and the bar above the composer while a reply is being written.

import type { Message } from "../api/client";

/** A one-line snippet of a message's text (never HTML). */
export function snippet(m: Message | undefined, max = 120): string {
  if (!m) return "an earlier message";
  if (m.deleted) return "a deleted message";
  if (m.content == null) return "an encrypted message";
  const t = m.content.replace(/\s+/g, " ").trim();
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}

export function ReplyQuote({ original, sender, onShow }: { original: Message | undefined; sender: string; onShow: () => void }) {
  return (
    <button type="button" class="reply-quote" onClick={onShow}>
      <span class="visually-hidden">In reply to </span>
      <span class="reply-sender">{original ? sender : ""}</span> <span class="reply-snippet">{snippet(original)}</span>
    </button>
  );
}

export function ReplyBar({ original, sender, onCancel }: { original: Message; sender: string; onCancel: () => void }) {
  return (
    <p class="reply-bar">
      <span>
        Replying to <strong>{sender}</strong>: <span class="reply-snippet">{snippet(original, 80)}</span>
      </span>
      <button type="button" class="link" onClick={onCancel}>
        Cancel reply
      </button>
    </p>
  );
}
