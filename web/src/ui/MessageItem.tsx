// One message of the list: sender, time, text (as text), and for one's own messages the edit
// and delete actions.

import { useState } from "preact/hooks";
import { ApiFailure, type Message, api, http } from "../api/client";
import { Attachments } from "./Attachments";
import { MessageText } from "./MessageText";
import { type MessageFeatures, MessageExtras, QuoteOf, isMentioned } from "./MessageExtras";
import type { RowPosition } from "./MessageList";

interface Props {
  message: Message;
  sender: string;
  mine: boolean;
  /** The server's answer to an edit or delete, to merge into the list. */
  onChanged: (m: Message) => void;
  onError: (text: string) => void;
  /** Replies, reactions, polls, mentions (MessageExtras). */
  features?: MessageFeatures;
  /** Its place in the virtualized list. */
  position?: RowPosition;
}

function time(at: string): string {
  return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function MessageItem({ message: m, sender, mine, onChanged, onError, features, position }: Props) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState("");

  async function save(e: Event) {
    e.preventDefault();
    const content = draft.trim();
    if (!content) return;
    try {
      onChanged(
        await api((headers) => http.PATCH("/v1/messages/{id}", { headers, params: { path: { id: m.id } }, body: { content } })),
      );
      setEditing(false);
    } catch (err) {
      onError(err instanceof ApiFailure ? err.message : "The message could not be edited.");
    }
  }

  async function remove() {
    if (!confirm("Delete this message for everyone?")) return;
    try {
      onChanged(await api((headers) => http.DELETE("/v1/messages/{id}", { headers, params: { path: { id: m.id } } })));
    } catch (err) {
      onError(err instanceof ApiFailure ? err.message : "The message could not be deleted.");
    }
  }

  const editable = mine && !m.deleted && m.content != null && m.kind === "text";
  return (
    <li
      class={[mine && "mine", isMentioned(m, features) && "mentioned"].filter(Boolean).join(" ") || undefined}
      tabIndex={position ? -1 : undefined}
      {...position}
    >
      <span class="sender">{sender}</span> <time dateTime={m.created_at}>{time(m.created_at)}</time>
      {isMentioned(m, features) && <span class="mention-tag">Mentions you</span>}
      {features && <QuoteOf message={m} f={features} />}
      {editing ? (
        <form class="edit" onSubmit={save}>
          <textarea
            aria-label="Edit message"
            rows={2}
            maxLength={10000}
            value={draft}
            onInput={(e) => setDraft(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Escape") setEditing(false);
              if (e.key === "Enter" && !e.shiftKey && !e.isComposing) void save(e);
            }}
          />
          <button type="submit">Save</button>{" "}
          <button type="button" class="secondary" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <p class="text">
          {m.deleted ? (
            <em>This message was deleted.</em>
          ) : m.content != null ? (
            <MessageText text={m.content} />
          ) : m.ciphertext == null && m.attachments.length > 0 ? null : (
            <em>Encrypted message: open it in a client that supports encryption.</em>
          )}
          {m.edited_at && !m.deleted && <span class="edited"> (edited)</span>}
        </p>
      )}
      {!m.deleted && <Attachments ids={m.attachments} />}
      {editable && !editing && (
        <span class="actions">
          <button
            type="button"
            class="link"
            onClick={() => {
              setDraft(m.content ?? "");
              setEditing(true);
            }}
          >
            Edit
          </button>
          <button type="button" class="link" onClick={() => void remove()}>
            Delete
          </button>
        </span>
      )}
      {features && <MessageExtras message={m} f={features} />}
    </li>
  );
}
