// A message's reactions: a chip per emoji with its count (pressed when one of them is mine;
// pressing it adds or removes mine), and a small keyboard-usable picker of common emoji.

import { useRef, useState } from "preact/hooks";
import { type Message, api, http } from "../api/client";
import { COMMON_EMOJI, canAdd, chipLabel, reactionChips } from "../reactions";
import { apiErrorText } from "../errors";

interface Props {
  message: Message;
  mine: ReadonlySet<string> | undefined;
  /** The server's answer (new counts) and which emoji of mine changed. */
  onReacted: (m: Message, emoji: string, mine: boolean) => void;
  onError: (text: string) => void;
}

export async function react(id: string, emoji: string, add: boolean): Promise<Message> {
  return add
    ? api((headers) => http.POST("/v1/messages/{id}/reactions", { headers, params: { path: { id } }, body: { emoji } }))
    : api((headers) =>
        // openapi-fetch percent-encodes path parameters.
        http.DELETE("/v1/messages/{id}/reactions/{emoji}", { headers, params: { path: { id, emoji } } }),
      );
}

export function Reactions({ message: m, mine, onReacted, onError }: Props) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const toggleRef = useRef<HTMLButtonElement>(null);
  const pickerRef = useRef<HTMLDivElement>(null);
  const counts = m.reactions as unknown as Record<string, number>;
  const chips = reactionChips(counts, mine);

  async function set(emoji: string, add: boolean) {
    if (busy) return;
    setBusy(true);
    try {
      onReacted(await react(m.id, emoji, add), emoji, add);
    } catch (e) {
      onError(apiErrorText(e, "The reaction could not be saved."));
    } finally {
      setBusy(false);
    }
  }

  function close(focusToggle: boolean) {
    setOpen(false);
    if (focusToggle) toggleRef.current?.focus();
  }

  function onPickerKey(e: KeyboardEvent) {
    const buttons = [...(pickerRef.current?.querySelectorAll("button") ?? [])];
    const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
    let next = -1;
    if (e.key === "Escape") {
      e.preventDefault();
      close(true);
      return;
    }
    if (e.key === "ArrowRight" || e.key === "ArrowDown") next = (i + 1) % buttons.length;
    else if (e.key === "ArrowLeft" || e.key === "ArrowUp") next = (i - 1 + buttons.length) % buttons.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = buttons.length - 1;
    if (next >= 0) {
      e.preventDefault();
      buttons[next]?.focus();
    }
  }

  return (
    <div class="reactions">
      {chips.length > 0 && (
        <span class="reaction-chips" role="group" aria-label="Reactions">
          {chips.map((c) => (
            <button
              key={c.emoji}
              type="button"
              class={`reaction-chip${c.mine ? " mine" : ""}`}
              aria-pressed={c.mine}
              aria-label={chipLabel(c)}
              disabled={busy}
              onClick={() => void set(c.emoji, !c.mine)}
            >
              <span aria-hidden="true">{c.emoji}</span> <span aria-hidden="true">{c.count}</span>
            </button>
          ))}
        </span>
      )}
      <button
        ref={toggleRef}
        type="button"
        class="link reaction-toggle"
        aria-expanded={open}
        onClick={() => {
          setOpen(!open);
          if (!open) setTimeout(() => pickerRef.current?.querySelector("button")?.focus(), 0);
        }}
      >
        React
      </button>
      {open && (
        <div
          class="emoji-picker"
          role="group"
          aria-label="Choose a reaction"
          ref={pickerRef}
          onKeyDown={onPickerKey}
          onFocusOut={(e) => {
            if (!pickerRef.current?.contains(e.relatedTarget as Node | null) && e.relatedTarget !== toggleRef.current)
              close(false);
          }}
        >
          {COMMON_EMOJI.map((emoji) => {
            const already = mine?.has(emoji) ?? false;
            const allowed = already || canAdd(counts, emoji);
            return (
              <button
                key={emoji}
                type="button"
                aria-label={already ? `Remove your ${emoji}` : `React with ${emoji}`}
                aria-pressed={already}
                disabled={!allowed || busy}
                title={allowed ? undefined : "This message has as many different reactions as it can take."}
                onClick={() => {
                  void set(emoji, !already);
                  close(true);
                }}
              >
                {emoji}
              </button>
            );
          })}
        </div>
      )}
    </div>
  );
}
