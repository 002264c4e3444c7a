// One drive entry in detail: download, rename, move, delete; for files the versions (list,
// upload a new one, restore); for the owner the shares (to a user or a conversation) and the
// public links (created with expiry, password and download limit; the link shown once).

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure, type Conversation, api, http } from "../api/client";
import { type UploadState, localToIso, typeLabel, uploadLabel, uploadPercent, uploadStep } from "../drive";
import { formatSize } from "../size";
import {
  type FileView,
  type LinkView,
  type ShareView,
  type VersionView,
  deleteFile,
  downloadFile,
  patchFile,
  uploadFile,
  userIdByName,
  userLabel,
  why,
} from "../driveApi";
import { PickDialog } from "./DriveBrowser";
import { ErrorLine, StatusLine } from "./Note";
import { dateTime } from "../format";

interface Props {
  file: FileView;
  /** Whether the caller owns it, as far as the screen knows (what they list in their own tree). */
  owned: boolean;
  conversations: Conversation[];
  conversationName: (c: Conversation) => string;
  onChanged: (f: FileView) => void;
  onDeleted: (id: string) => void;
  onClose: () => void;
}

export function FileDetails({ file: f, owned, conversations, conversationName, onChanged, onDeleted, onClose }: Props) {
  const [error, setError] = useState<string | null>(null);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [moving, setMoving] = useState(false);
  // Only the owner lists shares and links (403 otherwise): someone else's entry is not asked.
  const [owner, setOwner] = useState<boolean | null>(owned ? null : false);
  const [shares, setShares] = useState<ShareView[]>([]);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => heading.current?.focus(), []);

  async function loadShares() {
    try {
      const page = await api((headers) => http.GET("/v1/files/{id}/shares", { headers, params: { path: { id: f.id }, query: { limit: 100 } } }));
      setShares(page.items);
      setOwner(true);
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 403) setOwner(false);
      else setError(why(e, "The shares could not be loaded."));
    }
  }

  useEffect(() => {
    if (owned) void loadShares();
  }, [f.id, owned]);

  async function rename(e: Event) {
    e.preventDefault();
    const name = (renaming ?? "").trim();
    if (!name || name === f.name) return setRenaming(null);
    try {
      onChanged(await patchFile(f.id, { name }));
      setRenaming(null);
      setError(null);
    } catch (err) {
      setError(why(err, "The name could not be changed."));
    }
  }

  async function moveTo(target: FileView | null) {
    setMoving(false);
    try {
      onChanged(await patchFile(f.id, { parent_id: target?.id ?? null }));
      setError(null);
    } catch (err) {
      setError(why(err, "It could not be moved."));
    }
  }

  async function remove() {
    const what = f.is_folder ? `the folder “${f.name}” and everything in it` : `“${f.name}” and all its versions`;
    if (!confirm(`Delete ${what}? This cannot be undone.`)) return;
    try {
      await deleteFile(f.id);
      onDeleted(f.id);
    } catch (err) {
      setError(why(err, "It could not be deleted."));
    }
  }

  return (
    <aside class="file-details" aria-labelledby="details-heading">
      <header>
        <h2 id="details-heading" tabIndex={-1} ref={heading}>
          {f.name}
        </h2>
        <button type="button" class="secondary" onClick={onClose} aria-label="Close details">
          Close
        </button>
      </header>
      <dl>
        <dt>Type</dt>
        <dd>{typeLabel(f.is_folder, f.content_type)}</dd>
        {!f.is_folder && (
          <>
            <dt>Size</dt>
            <dd>{formatSize(f.size)}</dd>
            <dt>Version</dt>
            <dd>{f.version}</dd>
          </>
        )}
        <dt>Modified</dt>
        <dd>
          <time dateTime={f.updated_at}>{dateTime(f.updated_at)}</time>
        </dd>
      </dl>
      <ErrorLine text={error} />
      <div class="details-actions">
        {!f.is_folder && f.status === "ready" && (
          <button type="button" onClick={() => void downloadFile(f.id).catch((e: unknown) => setError(why(e, "The download could not start.", f.name)))}>
            Download
          </button>
        )}
        <button type="button" class="secondary" onClick={() => setRenaming(renaming === null ? f.name : null)} aria-expanded={renaming !== null}>
          Rename
        </button>
        {/* The chooser browses the caller's own folders: moving is the owner's. */}
        {owner !== false && (
          <button type="button" class="secondary" onClick={() => setMoving(true)}>
            Move
          </button>
        )}
        {owner !== false && (
          <button type="button" class="secondary danger" onClick={() => void remove()}>
            Delete
          </button>
        )}
      </div>
      {renaming !== null && (
        <form class="drive-inline" onSubmit={rename}>
          <label>
            New name
            <input required maxLength={255} value={renaming} onInput={(e) => setRenaming(e.currentTarget.value)} />
          </label>
          <button type="submit">Save name</button>
          <button type="button" class="secondary" onClick={() => setRenaming(null)}>
            Cancel
          </button>
        </form>
      )}
      {moving && (
        <PickDialog
          title={`Move “${f.name}” to…`}
          mode="folder"
          exclude={f.is_folder ? f.id : undefined}
          onPick={(t) => void moveTo(t)}
          onClose={() => setMoving(false)}
        />
      )}
      {!f.is_folder && f.status === "ready" && <Versions file={f} onChanged={onChanged} />}
      {owner === false && <p class="hint-small">Shared with you: only its owner can share it or make public links.</p>}
      {owner && (
        <Shares file={f} shares={shares} reload={loadShares} conversations={conversations} conversationName={conversationName} />
      )}
      {owner && !f.is_folder && f.status === "ready" && <Links file={f} />}
    </aside>
  );
}

function Versions({ file: f, onChanged }: { file: FileView; onChanged: (f: FileView) => void }) {
  const [items, setItems] = useState<VersionView[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [upload, setUpload] = useState<UploadState | null>(null);
  const input = useRef<HTMLInputElement>(null);

  async function load(more: boolean) {
    try {
      const page = await api((headers) =>
        http.GET("/v1/files/{id}/versions", { headers, params: { path: { id: f.id }, query: { limit: 20, ...(more && cursor ? { cursor } : {}) } } }),
      );
      setItems((cur) => (more ? [...cur, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    } catch (e) {
      setError(why(e, "The versions could not be loaded."));
    }
  }

  useEffect(() => {
    void load(false);
  }, [f.id, f.version]);

  async function newVersion(file: File) {
    setError(null);
    setUpload({ phase: "queued" });
    try {
      const view = await uploadFile(file, { versionOf: f.id }, (ev) => setUpload((s) => (s ? uploadStep(s, ev) : s)));
      onChanged(view);
    } catch {
      // The state shows it.
    }
  }

  async function restore(n: number) {
    try {
      onChanged(await api((headers) => http.POST("/v1/files/{id}/versions/{n}/restore", { headers, params: { path: { id: f.id, n } } })));
      setError(null);
    } catch (e) {
      setError(why(e, "That version could not be restored."));
    }
  }

  const pct = upload ? uploadPercent(upload) : null;
  return (
    <section aria-labelledby="versions-heading">
      <h3 id="versions-heading">Versions</h3>
      <ol class="versions" aria-label="Versions">
        {items.map((v) => (
          <li key={v.version}>
            <span>
              Version {v.version} · {formatSize(v.size)} · <time dateTime={v.created_at}>{dateTime(v.created_at)}</time>
            </span>
            {v.version === f.version ? (
              <span class="tag">Current</span>
            ) : (
              <button type="button" class="link" aria-label={`Restore version ${v.version}`} onClick={() => void restore(v.version)}>
                Restore
              </button>
            )}
          </li>
        ))}
      </ol>
      {cursor && (
        <button type="button" class="secondary" onClick={() => void load(true)}>
          Load more versions
        </button>
      )}
      <button type="button" class="secondary" onClick={() => input.current?.click()}>
        Upload new version
      </button>
      <input
        ref={input}
        type="file"
        hidden
        aria-label="New version"
        onChange={(e) => {
          const file = e.currentTarget.files?.[0];
          e.currentTarget.value = "";
          if (file) void newVersion(file);
        }}
      />
      {upload && (
        <p class={upload.phase === "failed" ? "error" : "meta"} role={upload.phase === "failed" ? "alert" : "status"}>
          {pct !== null && upload.phase !== "done" && <progress max={100} value={pct} aria-label="Uploading the new version" />} {uploadLabel(upload)}
        </p>
      )}
      <ErrorLine text={error} />
    </section>
  );
}

function ShareName({ share: s, conversations, conversationName }: { share: ShareView; conversations: Conversation[]; conversationName: (c: Conversation) => string }) {
  const [label, setLabel] = useState("…");
  useEffect(() => {
    if (s.user_id) void userLabel(s.user_id).then(setLabel);
    else {
      const c = conversations.find((x) => x.id === s.conversation_id);
      setLabel(c ? `the conversation ${conversationName(c)}` : "a conversation");
    }
  }, [s.id, conversations]);
  return <span>{label}</span>;
}

function Shares({
  file: f,
  shares,
  reload,
  conversations,
  conversationName,
}: {
  file: FileView;
  shares: ShareView[];
  reload: () => Promise<void>;
  conversations: Conversation[];
  conversationName: (c: Conversation) => string;
}) {
  const [to, setTo] = useState<"user" | "conversation">("user");
  const [username, setUsername] = useState("");
  const [conversation, setConversation] = useState("");
  const [permission, setPermission] = useState("read");
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const plain = conversations.filter((c) => !c.encrypted);

  async function share(e: Event) {
    e.preventDefault();
    setError(null);
    setNote(null);
    try {
      let target: { user_id: string } | { conversation_id: string };
      if (to === "user") target = { user_id: await userIdByName(username) };
      else {
        const id = conversation || plain[0]?.id;
        if (!id) throw new Error("Choose a conversation.");
        target = { conversation_id: id };
      }
      await api((headers) => http.POST("/v1/files/{id}/shares", { headers, params: { path: { id: f.id } }, body: { ...target, permission } }));
      setUsername("");
      setNote("Shared.");
      await reload();
    } catch (err) {
      setError(why(err, "It could not be shared."));
    }
  }

  async function unshare(s: ShareView) {
    try {
      await api((headers) => http.DELETE("/v1/files/{id}/shares/{share_id}", { headers, params: { path: { id: f.id, share_id: s.id } } }));
      await reload();
    } catch (err) {
      setError(why(err, "The share could not be removed."));
    }
  }

  return (
    <section aria-labelledby="shares-heading">
      <h3 id="shares-heading">Sharing</h3>
      {shares.length === 0 ? (
        <p class="hint-small">Not shared with anyone.</p>
      ) : (
        <ul class="shares" aria-label="Shared with">
          {shares.map((s) => (
            <li key={s.id}>
              <ShareName share={s} conversations={conversations} conversationName={conversationName} />{" "}
              <span class="tag">{s.permission === "write" ? "can edit" : "can view"}</span>
              <button type="button" class="link" aria-label={`Remove share ${s.user_id ? "with this person" : "with this conversation"}`} onClick={() => void unshare(s)}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <form class="stack share-form" onSubmit={share}>
        <fieldset>
          <legend>Share with</legend>
          <label class="inline">
            <input type="radio" name="share-to" checked={to === "user"} onChange={() => setTo("user")} /> A person
          </label>
          <label class="inline">
            <input type="radio" name="share-to" checked={to === "conversation"} onChange={() => setTo("conversation")} /> A conversation
          </label>
        </fieldset>
        {to === "user" ? (
          <label>
            Username
            <input required value={username} placeholder="bob" onInput={(e) => setUsername(e.currentTarget.value)} />
          </label>
        ) : (
          <label>
            Conversation
            <select value={conversation || plain[0]?.id || ""} onChange={(e) => setConversation(e.currentTarget.value)}>
              {plain.map((c) => (
                <option key={c.id} value={c.id}>
                  {conversationName(c)}
                </option>
              ))}
            </select>
          </label>
        )}
        <label>
          Permission
          <select value={permission} onChange={(e) => setPermission(e.currentTarget.value)}>
            <option value="read">Can view and download</option>
            <option value="write">Can also rename, move and upload versions</option>
          </select>
        </label>
        <button type="submit">Share</button>
        <ErrorLine text={error} />
        <StatusLine text={note} />
      </form>
    </section>
  );
}

function Links({ file: f }: { file: FileView }) {
  const [items, setItems] = useState<LinkView[]>([]);
  const [expires, setExpires] = useState("");
  const [password, setPassword] = useState("");
  const [max, setMax] = useState("");
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  async function load() {
    try {
      const page = await api((headers) => http.GET("/v1/files/{id}/links", { headers, params: { path: { id: f.id }, query: { limit: 100 } } }));
      setItems(page.items);
    } catch (e) {
      setError(why(e, "The links could not be loaded."));
    }
  }

  useEffect(() => {
    void load();
  }, [f.id]);

  async function create(e: Event) {
    e.preventDefault();
    setError(null);
    setCopied(false);
    try {
      const expires_at = localToIso(expires);
      if (expires && !expires_at) throw new Error("The expiry is not a valid date and time.");
      const max_downloads = max ? Number(max) : null;
      const link = await api((headers) =>
        http.POST("/v1/files/{id}/links", {
          headers,
          params: { path: { id: f.id } },
          body: { expires_at, password: password || null, max_downloads },
        }),
      );
      // The app's own page for the link (it asks for the password and starts the download).
      setCreated(link.page_url);
      setPassword("");
      await load();
    } catch (err) {
      setError(why(err, "The link could not be created."));
    }
  }

  async function revoke(l: LinkView) {
    try {
      await api((headers) => http.DELETE("/v1/files/{id}/links/{link_id}", { headers, params: { path: { id: f.id, link_id: l.id } } }));
      await load();
    } catch (err) {
      setError(why(err, "The link could not be revoked."));
    }
  }

  return (
    <section aria-labelledby="links-heading">
      <h3 id="links-heading">Public links</h3>
      {items.length > 0 && (
        <ul class="links" aria-label="Public links">
          {items.map((l) => (
            <li key={l.id}>
              <span>
                Created <time dateTime={l.created_at}>{dateTime(l.created_at)}</time> · {l.downloads}
                {l.max_downloads ? ` of ${l.max_downloads}` : ""} downloads
                {l.expires_at ? ` · expires ${dateTime(l.expires_at)}` : ""}
                {l.password_required ? " · password" : ""}
              </span>
              <button type="button" class="link" aria-label={`Revoke the link created ${dateTime(l.created_at)}`} onClick={() => void revoke(l)}>
                Revoke
              </button>
            </li>
          ))}
        </ul>
      )}
      {created && (
        <div class="new-link" role="status">
          <label>
            New public link (shown only now: copy it)
            <input readOnly value={created} onFocus={(e) => e.currentTarget.select()} />
          </label>
          <button
            type="button"
            class="secondary"
            onClick={() =>
              void navigator.clipboard?.writeText(created).then(
                () => setCopied(true),
                () => setError("Copying was refused: select the link and copy it by hand."),
              )
            }
          >
            {copied ? "Copied" : "Copy link"}
          </button>
        </div>
      )}
      <form class="stack" onSubmit={create}>
        <label>
          Expires (optional)
          <input type="datetime-local" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
        </label>
        <label>
          Password (optional)
          <input type="password" autoComplete="new-password" minLength={4} maxLength={256} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <label>
          Maximum downloads (optional)
          <input type="number" min={1} max={1000000} value={max} onInput={(e) => setMax(e.currentTarget.value)} />
        </label>
        <button type="submit">Create link</button>
        <ErrorLine text={error} />
      </form>
    </section>
  );
}
