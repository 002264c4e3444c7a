// The way back to the conversation list from a screen (Drive, Settings, Admin, …): on a phone
// the list and a screen do not stand side by side, so this link is how one gets back.

import { navigate } from "../router";

export function BackToConversations() {
  return (
    <a
      class="back"
      href="/"
      onClick={(e) => {
        e.preventDefault();
        navigate({ name: "home" });
      }}
    >
      All conversations
    </a>
  );
}
