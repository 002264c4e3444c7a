// Reactions of the open conversation. The counts come with each message (`reactions:
// {emoji: count}`) and with each `reaction.updated` event; which ones are mine come with history
// pages (`my_reactions`), then from my own calls and from the events whose `user_id` is me (my
// other sessions included). Realtime message views, shared by every member, carry none.

/** The picker's choice; the server takes any one grapheme cluster of at most 32 bytes. */
export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"] as const;

/** The server's default bound on different emoji per message (`max_reactions_per_message`). */
export const MAX_DISTINCT_EMOJI = 20;

export type MyReactions = ReadonlyMap<string, ReadonlySet<string>>;

export interface ReactionEvent {
  message_id: string;
  conversation_id: string;
  reactions: Record<string, number>;
  user_id: string;
  emoji: string;
  added: boolean;
}

export type ReactionAction =
  | { type: "set"; message_id: string; emoji: string; mine: boolean }
  | { type: "event"; event: ReactionEvent; me: string }
  | { type: "loaded"; messages: readonly { id: string; my_reactions?: string[] | null }[] };

export function myReactionsReducer(state: MyReactions, action: ReactionAction): MyReactions {
  if (action.type === "loaded") {
    const known = action.messages.filter((m) => m.my_reactions != null);
    if (known.length === 0) return state;
    const out = new Map(state);
    for (const m of known) {
      if (m.my_reactions!.length === 0) out.delete(m.id);
      else out.set(m.id, new Set(m.my_reactions));
    }
    return out;
  }
  const [id, emoji, mine] =
    action.type === "set"
      ? [action.message_id, action.emoji, action.mine]
      : action.event.user_id === action.me
        ? [action.event.message_id, action.event.emoji, action.event.added]
        : [null, "", false];
  if (id === null) return state;
  const had = state.get(id) ?? new Set<string>();
  if (had.has(emoji) === mine) return state;
  const next = new Set(had);
  if (mine) next.add(emoji);
  else next.delete(emoji);
  const out = new Map(state);
  if (next.size === 0) out.delete(id);
  else out.set(id, next);
  return out;
}

export interface ReactionChip {
  emoji: string;
  count: number;
  mine: boolean;
}

/** The chips under a message: counts above zero, in the order the server lists them. */
export function reactionChips(counts: Record<string, number> | undefined, mine: ReadonlySet<string> | undefined): ReactionChip[] {
  return Object.entries(counts ?? {})
    .filter(([, n]) => typeof n === "number" && n > 0)
    .map(([emoji, count]) => ({ emoji, count, mine: mine?.has(emoji) ?? false }));
}

/** Whether adding `emoji` stays within the server's bound on different emoji. */
export function canAdd(counts: Record<string, number> | undefined, emoji: string, max = MAX_DISTINCT_EMOJI): boolean {
  const present = Object.entries(counts ?? {}).filter(([, n]) => n > 0);
  return present.some(([e]) => e === emoji) || present.length < max;
}

/** "2 reactions 👍, including yours" — the chip's accessible name. */
export function chipLabel(c: ReactionChip): string {
  return `${c.emoji} ${c.count} ${c.count === 1 ? "reaction" : "reactions"}${c.mine ? ", including yours: remove yours" : ""}`;
}
