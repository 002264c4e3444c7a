// What a conversation's header offers beyond messaging: blocking the other person of a direct
// conversation, managing a group, and scheduled calls. One line in ConversationView renders it.

import type { Conversation, Member } from "../api/client";
import { BlockPeer } from "./Blocks";
import { GroupAdmin } from "./GroupAdmin";
import { ScheduledCalls } from "./ScheduledCalls";

interface Props {
  conversation: Conversation | null;
  me: string;
  members: Member[];
  onMembers: (m: Member[]) => void;
}

export function ConversationExtras({ conversation, me, members, onMembers }: Props) {
  if (!conversation) return null;
  const names = new Map(members.map((m) => [m.user_id, m.display_name]));
  return (
    <div class="gaps-extras">
      {conversation.kind === "direct" && conversation.peer && <BlockPeer peer={conversation.peer} />}
      {conversation.kind === "group" && <GroupAdmin conversation={conversation} me={me} members={members} onMembers={onMembers} />}
      <ScheduledCalls conversation={conversation} me={me} names={names} />
    </div>
  );
}
