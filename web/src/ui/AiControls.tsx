// The small AI pieces that live in other screens: the user's opt-in (Settings, Assistant), the
// shared AI settings (the top bar shows "Assistant" from them), and a plain conversation's AI
// panel (its `ai_enabled` switch and "Summarize").

import { useEffect, useState } from "preact/hooks";
import { ApiFailure, type Conversation, type Schemas, api, http } from "../api/client";
import { type AiSettings, aiProblem, loadAiSettings, saveAiOptIn } from "../ai";
import { ErrorLine, NoteLine } from "./Note";
import "./ai.css";

// One settings request shared by the components of a page; refreshed when the opt-in changes.
let shared: Promise<AiSettings> | null = null;
const watchers = new Set<(s: AiSettings) => void>();

export function aiSettings(fresh = false): Promise<AiSettings> {
  if (fresh || !shared) {
    shared = loadAiSettings();
    shared.then(
      (s) => watchers.forEach((w) => w(s)),
      () => {
        shared = null;
      },
    );
  }
  return shared;
}

function publish(s: AiSettings) {
  shared = Promise.resolve(s);
  watchers.forEach((w) => w(s));
}

export function useAiSettings(): { settings: AiSettings | null; error: string | null; reload: () => void } {
  const [settings, setSettings] = useState<AiSettings | null>(null);
  const [error, setError] = useState<string | null>(null);
  function reload(fresh = false) {
    aiSettings(fresh).then(
      (s) => {
        setSettings(s);
        setError(null);
      },
      (e) => setError(aiProblem(e, "Loading the AI settings")),
    );
  }
  useEffect(() => {
    watchers.add(setSettings);
    reload();
    return () => watchers.delete(setSettings);
  }, []);
  return { settings, error, reload: () => reload(true) };
}

/** What the server offers, in words. */
function offerLine(s: AiSettings): string {
  if (!s.provider_available) {
    return "This server has no AI provider available right now: assistant chat and images are off; summaries use the built-in offline summarizer.";
  }
  const parts = [s.chat ? "assistant chat" : null, s.images ? "image generation" : null].filter(Boolean);
  return `This server offers ${parts.length ? parts.join(" and ") : "no assistant chat or images"}; summaries ${
    s.summaries === "provider" ? "use its AI provider" : "use the built-in offline summarizer"
  }.`;
}

/** The user's opt-in (`PATCH /v1/ai/settings`). */
export function AiOptIn() {
  const { settings, error, reload } = useAiSettings();
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);

  async function toggle(enabled: boolean) {
    try {
      publish(await saveAiOptIn(enabled));
      setNote({ ok: true, text: enabled ? "AI helpers are on for your account." : "AI helpers are off for your account." });
    } catch (e) {
      setNote({ ok: false, text: aiProblem(e, "Saving the AI setting") });
    }
  }

  return (
    <section class="ai-optin" aria-labelledby="ai-optin-heading">
      <h2 id="ai-optin-heading">AI helpers</h2>
      {error && (
        <p class="error" role="alert">
          {error}{" "}
          <button type="button" class="secondary" onClick={reload}>
            Try again
          </button>
        </p>
      )}
      {settings && (
        <>
          <label class="check">
            <input type="checkbox" checked={settings.enabled} onChange={(e) => void toggle(e.currentTarget.checked)} />
            Use AI helpers
          </label>
          <p class="hint-small">
            Off by default. When on, what you ask the assistant, your image prompts, and the conversations you
            summarize (only those whose members turned AI on) are sent to the server's AI provider. Encrypted
            conversations never are.
          </p>
          <p class="hint-small">{offerLine(settings)}</p>
        </>
      )}
      <NoteLine note={note} />
    </section>
  );
}

type Summary = Schemas["SummaryView"];

/**
 * A plain conversation's AI panel: whether AI helpers may read it (the owner or an admin of a
 * group, either member of a direct one, may change it) and a summary on request.
 */
export function ConversationAi({
  conversation,
  onChanged,
}: {
  conversation: Conversation;
  onChanged?: (c: Conversation) => void;
}) {
  const [enabled, setEnabled] = useState(conversation.ai_enabled);
  const [summary, setSummary] = useState<Summary | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setEnabled(conversation.ai_enabled), [conversation.ai_enabled]);

  if (conversation.encrypted) return null;
  const mayChange = conversation.kind === "direct" || conversation.my_role === "owner" || conversation.my_role === "admin";

  async function toggle(on: boolean) {
    setError(null);
    try {
      const c = await api((headers) =>
        http.PATCH("/v1/conversations/{id}", { headers, params: { path: { id: conversation.id } }, body: { ai_enabled: on } }),
      );
      setEnabled(c.ai_enabled);
      onChanged?.(c);
    } catch (e) {
      setError(e instanceof ApiFailure ? `The setting could not be changed: ${e.message}` : "The setting could not be changed.");
    }
  }

  async function summarize() {
    setBusy(true);
    setError(null);
    try {
      setSummary(
        await api((headers) =>
          http.POST("/v1/conversations/{id}/summary", { headers, params: { path: { id: conversation.id } }, body: {} }),
        ),
      );
    } catch (e) {
      setError(aiProblem(e, "The summary"));
    } finally {
      setBusy(false);
    }
  }

  return (
    <details class="ai-panel">
      <summary>AI {enabled ? "(on)" : "(off)"}</summary>
      <div class="ai-panel-body">
        {mayChange ? (
          <label class="check">
            <input type="checkbox" checked={enabled} onChange={(e) => void toggle(e.currentTarget.checked)} />
            Let AI helpers read this conversation
          </label>
        ) : (
          <p class="hint-small">
            AI helpers {enabled ? "may" : "may not"} read this conversation (its owner or an admin decides).
          </p>
        )}
        <p class="hint-small">
          When on, a member who opted in can summarize it or ask @assistant: the members' names and messages then
          go to the server's AI provider.
        </p>
        <button type="button" class="secondary" disabled={!enabled || busy} onClick={() => void summarize()}>
          {busy ? "Summarizing…" : "Summarize"}
        </button>
        <ErrorLine text={error} />
        {summary && (
          <section class="ai-summary" aria-label="Summary">
            <p class="summary-text">{summary.summary || "Nothing to summarize yet."}</p>
            <p class="hint-small">
              {summary.messages_used} messages, {summary.method === "offline" ? "offline summarizer" : "AI-written"}.
            </p>
          </section>
        )}
      </div>
    </details>
  );
}
