// The composer's textbox with `@` completion: typing `@` and the start of a name lists the
// conversation's members (a listbox the textbox points into with aria-activedescendant);
// arrow keys move, Enter or Tab inserts `@username`, Escape closes the list.

import type { TargetedKeyboardEvent } from "preact";
import { useRef, useState } from "preact/hooks";
import type { Member } from "../api/client";
import { type ActiveMention, activeMention, insertMention, mentionCompletions } from "../mentions";

interface Props {
  value: string;
  onValue: (v: string) => void;
  members: readonly Member[];
  me: string;
  /** Keys the completion does not take (Enter to send…). */
  onKeyDown: (e: TargetedKeyboardEvent<HTMLTextAreaElement>) => void;
  onTyped: () => void;
  id: string;
}

export function MentionInput({ value, onValue, members, me, onKeyDown, onTyped, id }: Props) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const [mention, setMention] = useState<ActiveMention | null>(null);
  const [active, setActive] = useState(0);
  const options = mention ? mentionCompletions(members, mention.query, me) : [];
  const open = options.length > 0;
  const listId = `${id}-mentions`;
  const optionId = (i: number) => `${listId}-${i}`;

  function look(el: HTMLTextAreaElement) {
    const m = el.selectionStart === el.selectionEnd ? activeMention(el.value, el.selectionStart) : null;
    setMention(m);
    if (m?.query !== mention?.query || (m === null) !== (mention === null)) setActive(0);
  }

  function choose(i: number) {
    const el = ref.current;
    const who = options[i];
    if (!el || !mention || !who) return;
    const r = insertMention(el.value, mention, el.selectionStart, who.username);
    onValue(r.text);
    setMention(null);
    // After Preact has written the new value.
    requestAnimationFrame(() => {
      el.focus();
      el.setSelectionRange(r.caret, r.caret);
    });
  }

  return (
    <span class="mention-input">
      <textarea
        ref={ref}
        id={id}
        aria-label="Message"
        aria-autocomplete="list"
        aria-controls={open ? listId : undefined}
        aria-activedescendant={open ? optionId(Math.min(active, options.length - 1)) : undefined}
        rows={2}
        maxLength={10000}
        value={value}
        onInput={(e) => {
          onValue(e.currentTarget.value);
          look(e.currentTarget);
          onTyped();
        }}
        onClick={(e) => look(e.currentTarget)}
        onBlur={() => setMention(null)}
        onKeyDown={(e) => {
          if (open && !e.isComposing) {
            if (e.key === "ArrowDown" || e.key === "ArrowUp") {
              e.preventDefault();
              const d = e.key === "ArrowDown" ? 1 : -1;
              setActive((a) => (a + d + options.length) % options.length);
              return;
            }
            if (e.key === "Enter" || e.key === "Tab") {
              e.preventDefault();
              choose(Math.min(active, options.length - 1));
              return;
            }
            if (e.key === "Escape") {
              e.preventDefault();
              setMention(null);
              return;
            }
          }
          onKeyDown(e);
        }}
      />
      {open && (
        <ul class="mention-list" role="listbox" id={listId} aria-label="Mention a member">
          {options.map((m, i) => (
            <li
              key={m.user_id}
              id={optionId(i)}
              role="option"
              aria-selected={i === active}
              class={i === active ? "active" : undefined}
              // Keep the focus in the textbox.
              onMouseDown={(e) => {
                e.preventDefault();
                choose(i);
              }}
            >
              {m.display_name} <span class="meta">@{m.username}</span>
            </li>
          ))}
        </ul>
      )}
      <span class="visually-hidden" role="status">
        {open ? `${options.length} ${options.length === 1 ? "member" : "members"} to mention; arrow keys to choose, Enter to insert` : ""}
      </span>
    </span>
  );
}
