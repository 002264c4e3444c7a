// "Poll": a dialog to ask a question with 2–10 options, one or several choices, anonymous or
// not, and an optional closing time; the poll is sent as a message of kind "poll".

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure, type Message, api, http } from "../api/client";
import { newClientMessageId } from "../messages";
import { MAX_OPTIONS, MAX_OPTION_CHARS, MIN_OPTIONS, pollRequest } from "../polls";
import { ErrorLine } from "./Note";

interface Props {
  conversationId: string;
  onCreated: (m: Message) => void;
}

const blank = () => ({ question: "", options: ["", ""], multiple: false, anonymous: false, closesAt: "" });

export function NewPoll({ conversationId, onCreated }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [open, setOpen] = useState(false);
  const [draft, setDraft] = useState(blank);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One id per poll being written: a retry after a lost answer is not a second poll.
  const clientId = useRef(newClientMessageId());

  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);

  async function submit(e: Event) {
    e.preventDefault();
    const r = pollRequest(draft);
    if (!r.ok) {
      setError(r.error);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const m = await api((headers) =>
        http.POST("/v1/conversations/{id}/messages", {
          headers,
          params: { path: { id: conversationId } },
          body: {
            client_message_id: clientId.current,
            kind: "poll",
            content: r.content,
            // The generated type says nothing of metadata's shape; API.md "Polls" does.
            metadata: { poll: r.poll } as unknown as Record<string, never>,
          },
        }),
      );
      onCreated(m);
      clientId.current = newClientMessageId();
      setDraft(blank());
      setOpen(false);
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : "The poll could not be created.");
    } finally {
      setBusy(false);
    }
  }

  const setOption = (i: number, v: string) =>
    setDraft((d) => ({ ...d, options: d.options.map((o, j) => (j === i ? v : o)) }));

  return (
    <>
      <button type="button" class="secondary" aria-haspopup="dialog" onClick={() => setOpen(true)}>
        Poll
      </button>
      <dialog ref={dialog} class="poll-dialog" aria-labelledby="new-poll-title" onClose={() => setOpen(false)}>
        <form onSubmit={submit}>
          <h3 id="new-poll-title">New poll</h3>
          <label>
            Question
            <input
              type="text"
              required
              maxLength={10000}
              value={draft.question}
              onInput={(e) => setDraft({ ...draft, question: e.currentTarget.value })}
            />
          </label>
          <fieldset>
            <legend>Options ({MIN_OPTIONS} to {MAX_OPTIONS})</legend>
            {draft.options.map((o, i) => (
              <span class="poll-draft-option" key={i}>
                <input
                  type="text"
                  maxLength={MAX_OPTION_CHARS}
                  aria-label={`Option ${i + 1}`}
                  value={o}
                  onInput={(e) => setOption(i, e.currentTarget.value)}
                />
                {draft.options.length > MIN_OPTIONS && (
                  <button
                    type="button"
                    class="link"
                    aria-label={`Remove option ${i + 1}`}
                    onClick={() => setDraft({ ...draft, options: draft.options.filter((_, j) => j !== i) })}
                  >
                    Remove
                  </button>
                )}
              </span>
            ))}
            {draft.options.length < MAX_OPTIONS && (
              <button
                type="button"
                class="secondary"
                onClick={() => setDraft({ ...draft, options: [...draft.options, ""] })}
              >
                Add an option
              </button>
            )}
          </fieldset>
          <label class="check">
            <input
              type="checkbox"
              checked={draft.multiple}
              onChange={(e) => setDraft({ ...draft, multiple: e.currentTarget.checked })}
            />
            Allow several choices
          </label>
          <label class="check">
            <input
              type="checkbox"
              checked={draft.anonymous}
              onChange={(e) => setDraft({ ...draft, anonymous: e.currentTarget.checked })}
            />
            Anonymous votes
          </label>
          <label>
            Closes at (optional)
            <input
              type="datetime-local"
              value={draft.closesAt}
              onInput={(e) => setDraft({ ...draft, closesAt: e.currentTarget.value })}
            />
          </label>
          <ErrorLine text={error} />
          <span class="poll-dialog-actions">
            <button type="submit" disabled={busy}>
              Create poll
            </button>
            <button type="button" class="secondary" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </span>
        </form>
      </dialog>
    </>
  );
}
