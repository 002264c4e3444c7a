// What a conversation's header offers beyond messaging: blocking the other person of a direct
// conversation, managing a group, and scheduled calls. One line in ConversationView renders it.

import type { Conversation, Member } from "../api/client";
import type { RealtimeEvent } from "../realtime";
import { BlockPeer } from "./Blocks";
import { GroupAdmin } from "./GroupAdmin";
import { ScheduledCalls } from "./ScheduledCalls";
import { PresenceText, usePresence } from "./Presence";

interface Props {
  conversation: Conversation | null;
  me: string;
  members: Member[];
  onMembers: (m: Member[]) => void;
  subscribe?: (l: (e: RealtimeEvent) => void) => () => void;
}

export function ConversationExtras({ conversation, me, members, onMembers, subscribe }: Props) {
  const others = members.map((m) => m.user_id).filter((u) => u !== me);
  const presence = usePresence(others, subscribe);
  if (!conversation) return null;
  const names = new Map(members.map((m) => [m.user_id, m.display_name]));
  return (
    <div class="gaps-extras">
      {conversation.kind === "direct" && conversation.peer && (
        <>
          <PresenceText presence={presence.get(conversation.peer.user_id)} />
          <BlockPeer peer={conversation.peer} />
        </>
      )}
      {conversation.kind === "group" && (
        <GroupAdmin conversation={conversation} me={me} members={members} onMembers={onMembers} presence={presence} />
      )}
      <ScheduledCalls conversation={conversation} me={me} names={names} />
    </div>
  );
}
