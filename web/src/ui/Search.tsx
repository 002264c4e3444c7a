// Full-text search over the caller's plain conversations (the server never indexes encrypted
// ones); a result opens its conversation.

import { useState } from "preact/hooks";
import { ApiFailure, type Message, api, http } from "../api/client";
import { lastActivity } from "../format";
import { navigate } from "../router";
import { ErrorLine } from "./Note";

export function Search({ nameOf }: { nameOf: (conversationId: string) => string }) {
  const [q, setQ] = useState("");
  const [results, setResults] = useState<Message[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: Event) {
    e.preventDefault();
    const query = q.trim();
    setError(null);
    if (!query) {
      setResults(null);
      return;
    }
    try {
      const page = await api((headers) =>
        http.GET("/v1/search/messages", { headers, params: { query: { q: query, limit: 20 } } }),
      );
      setResults(page.items);
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : "The search failed.");
    }
  }

  return (
    <div class="search">
      <form role="search" onSubmit={submit}>
        <label>
          Search messages
          <input type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
      </form>
      <ErrorLine text={error} />
      {results && (
        <>
          <p role="status" class="hint-small">
            {results.length === 0 ? "No messages found." : `${results.length} found`}
          </p>
          <ul class="results" aria-label="Search results">
            {results.map((m) => (
              <li key={m.id}>
                <a
                  href={`/c/${m.conversation_id}`}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate({ name: "conversation", id: m.conversation_id });
                  }}
                >
                  <span class="where">
                    {nameOf(m.conversation_id)} · {lastActivity(m.created_at)}
                  </span>
                  <span class="snippet">{m.content ?? ""}</span>
                </a>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
