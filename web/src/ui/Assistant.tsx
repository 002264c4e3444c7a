// The assistant: a chat with the server's AI model, answers streamed token by token (with a
// Stop that aborts the request, which makes the server stop the provider), and image
// generation into the drive. Everything the model writes is shown as text.

import { useEffect, useRef, useState } from "preact/hooks";
import { api, http, type Schemas } from "../api/client";
import { type ChatTurn, aiProblem, streamChat } from "../ai";
import { AiOptIn, useAiSettings } from "./AiControls";
import { BackToConversations } from "./BackLink";
import { ErrorLine } from "./Note";
import "./ai.css";

type FileView = Schemas["FileView"];

interface Turn extends ChatTurn {
  /** The answer ended early: stopped, cut, or an error. */
  note?: string;
}

export function Assistant() {
  const { settings, error, reload } = useAiSettings();
  return (
    <div class="assistant">
      <BackToConversations />
      <h1>Assistant</h1>
      <ErrorLine text={error} />
      <AiOptIn />
      {settings && !settings.chat && !settings.images && (
        <p class="hint" role="status">
          The server offers no assistant chat or image generation right now (no AI provider is configured, or it
          is down).{" "}
          <button type="button" class="secondary" onClick={reload}>
            Check again
          </button>
        </p>
      )}
      {settings?.chat && <AssistantChat optedIn={settings.enabled} />}
      {settings?.images && <ImageGeneration optedIn={settings.enabled} />}
    </div>
  );
}

function AssistantChat({ optedIn }: { optedIn: boolean }) {
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState("");
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const abort = useRef<AbortController | null>(null);
  const listRef = useRef<HTMLOListElement>(null);

  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [turns]);

  function appendToAnswer(text: string, note?: string) {
    setTurns((cur) => {
      const last = cur[cur.length - 1];
      if (!last || last.role !== "assistant") return cur;
      const next: Turn = { ...last, content: last.content + text };
      if (note) next.note = note;
      return [...cur.slice(0, -1), next];
    });
  }

  async function ask(e: Event) {
    e.preventDefault();
    const content = draft.trim();
    if (!content || streaming) return;
    setError(null);
    // What the model sees: the turns so far (answers that failed are left out) and this one.
    const history: ChatTurn[] = turns
      .filter((t) => t.content !== "" && !(t.role === "assistant" && t.note && t.note !== "Stopped."))
      .slice(-48)
      .map(({ role, content }) => ({ role, content }));
    const question: Turn = { role: "user", content };
    setTurns((cur) => [...cur, question, { role: "assistant", content: "" }]);
    setDraft("");
    const ctl = new AbortController();
    abort.current = ctl;
    setStreaming(true);
    try {
      const how = await streamChat([...history, { role: "user", content }], ctl.signal, (item) => {
        if (item.kind === "delta") appendToAnswer(item.text);
        else if (item.kind === "error") {
          appendToAnswer("", "The answer stopped: the AI service failed.");
          setError(`The AI service is unavailable right now: ${item.message}`);
        }
      });
      if (how === "aborted") appendToAnswer("", "Stopped.");
      else if (how === "cut") appendToAnswer("", "The answer was cut off.");
    } catch (err) {
      // Nothing was answered: take the empty answer back, keep the question in the box.
      setTurns((cur) => cur.slice(0, -2));
      setDraft(content);
      setError(aiProblem(err, "The question"));
    } finally {
      abort.current = null;
      setStreaming(false);
    }
  }

  return (
    <section class="assistant-chat" aria-labelledby="assistant-chat-heading">
      <h2 id="assistant-chat-heading">Chat</h2>
      {!optedIn && <p class="hint-small">Turn on “Use AI helpers” above to ask the assistant.</p>}
      <ol class="assistant-turns" aria-label="Assistant conversation" ref={listRef} tabIndex={0}>
        {turns.map((t, i) => (
          <li key={i} class={t.role}>
            <span class="sender">{t.role === "user" ? "You" : "Assistant (AI)"}</span>
            <p class="text">{t.content || (streaming && i === turns.length - 1 ? "…" : "")}</p>
            {t.note && <p class="hint-small">{t.note}</p>}
          </li>
        ))}
      </ol>
      <p class="visually-hidden" role="status">
        {streaming ? "The assistant is answering" : turns.length ? "The assistant has answered" : ""}
      </p>
      <ErrorLine text={error} />
      <form class="composer" onSubmit={ask}>
        <textarea
          aria-label="Ask the assistant"
          rows={2}
          value={draft}
          maxLength={32000}
          onInput={(e) => setDraft(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) void ask(e);
          }}
        />
        {streaming ? (
          <button type="button" class="secondary" onClick={() => abort.current?.abort()}>
            Stop
          </button>
        ) : (
          <button type="submit">Ask</button>
        )}
      </form>
      {turns.length > 0 && !streaming && (
        <button type="button" class="secondary" onClick={() => setTurns([])}>
          New chat
        </button>
      )}
    </section>
  );
}

const SIZES = ["256x256", "512x512", "1024x1024"] as const;

function ImageGeneration({ optedIn }: { optedIn: boolean }) {
  const [prompt, setPrompt] = useState("");
  const [size, setSize] = useState<(typeof SIZES)[number]>("1024x1024");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [made, setMade] = useState<{ file: FileView; url: string | null }[]>([]);

  async function link(file: FileView): Promise<string | null> {
    try {
      const d = await api((headers) => http.GET("/v1/files/{id}/download", { headers, params: { path: { id: file.id } } }));
      return d.download_url;
    } catch {
      return null;
    }
  }

  async function generate(e: Event) {
    e.preventDefault();
    const p = prompt.trim();
    if (!p) return;
    setBusy(true);
    setError(null);
    try {
      const file = await api((headers) => http.POST("/v1/ai/images", { headers, body: { prompt: p, size } }));
      setMade((cur) => [{ file, url: null }, ...cur]);
      const url = await link(file);
      setMade((cur) => cur.map((m) => (m.file.id === file.id ? { ...m, url } : m)));
    } catch (err) {
      setError(aiProblem(err, "The image"));
    } finally {
      setBusy(false);
    }
  }

  async function relink(file: FileView) {
    const url = await link(file);
    if (!url) setError("The download link could not be made.");
    setMade((cur) => cur.map((m) => (m.file.id === file.id ? { ...m, url } : m)));
  }

  return (
    <section class="assistant-images" aria-labelledby="assistant-images-heading">
      <h2 id="assistant-images-heading">Images</h2>
      {!optedIn && <p class="hint-small">Turn on “Use AI helpers” above to generate images.</p>}
      <form class="stack" onSubmit={generate}>
        <label>
          Image prompt
          <textarea rows={2} maxLength={4000} value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
        </label>
        <label>
          Size
          <select value={size} onChange={(e) => setSize(e.currentTarget.value as (typeof SIZES)[number])}>
            {SIZES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Generating…" : "Generate image"}
        </button>
      </form>
      <ErrorLine text={error} />
      {made.length > 0 && (
        <ul class="assistant-files" aria-label="Generated images">
          {made.map(({ file, url }) => (
            <li key={file.id}>
              <span class="name">{file.name}</span> <span class="hint-small">saved in your drive</span>{" "}
              {url ? (
                <a href={url} download={file.name} rel="noopener">
                  Download {file.name}
                </a>
              ) : (
                <button type="button" class="secondary" onClick={() => void relink(file)}>
                  Get download link for {file.name}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
