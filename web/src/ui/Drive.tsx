// The drive: a folder's files and folders (paged), search by name, new folder, uploads with
// progress (button or drag and drop), the quota, "Shared with me", and a details panel for the
// chosen entry (FileDetails: download, rename, move, delete, versions, shares, public links).

import { useEffect, useRef, useState } from "preact/hooks";
import type { Conversation } from "../api/client";
import { type Breadcrumb, type UploadState, isFinal, quotaFraction, typeLabel, uploadLabel, uploadPercent, uploadStep, walkUp } from "../drive";
import { formatSize } from "../size";
import {
  type FileView,
  type QuotaView,
  createFolder,
  downloadFile,
  findFile,
  listFolder,
  quota as loadQuota,
  sharedWithMe,
  uploadFile,
  why,
} from "../driveApi";
import type { RealtimeEvent } from "../realtime";
import { navigate } from "../router";
import { FileDetails } from "./FileDetails";
import { BackToConversations } from "./BackLink";
import { ErrorLine, StatusLine } from "./Note";
import { dateTime } from "../format";
import "./drive.css";

interface Props {
  /** My user id: a file whose `owner_id` it is is mine to share. */
  me: string;
  /** The open folder (null: the root), or "shared" for what others shared with me. */
  folder: string | null | "shared";
  conversations: Conversation[];
  conversationName: (c: Conversation) => string;
  subscribe: (l: (e: RealtimeEvent) => void) => () => void;
}

interface UploadRow {
  key: number;
  name: string;
  state: UploadState;
  abort: AbortController;
}

let uploadKeys = 0;

export function Drive({ me, folder, conversations, conversationName, subscribe }: Props) {
  const shared = folder === "shared";
  const folderId = shared ? null : folder;
  const [items, setItems] = useState<FileView[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [query, setQuery] = useState("");
  const [searching, setSearching] = useState<string | null>(null);
  const [crumb, setCrumb] = useState<Breadcrumb<FileView> | null>(null);
  const [uploads, setUploads] = useState<UploadRow[]>([]);
  const [selected, setSelected] = useState<FileView | null>(null);
  const [usage, setUsage] = useState<QuotaView | null>(null);
  const [newFolder, setNewFolder] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const [sharedIds, setSharedIds] = useState<ReadonlySet<string>>(new Set());
  const input = useRef<HTMLInputElement>(null);
  const generation = useRef(0);
  // Folders seen in lists: walking up a path asks the server only for the ones not seen yet.
  const known = useRef(new Map<string, FileView>());
  const remember = (list: FileView[]) => {
    for (const f of list) if (f.is_folder) known.current.set(f.id, f);
  };
  // After an upload: reload the list only if it still shows the folder the files went to.
  const [reloads, setReloads] = useState(0);
  const shownFolder = useRef<string | null | undefined>(folder);
  shownFolder.current = searching ? undefined : folder;
  const folderInput = useRef<HTMLInputElement>(null);
  const naming = newFolder !== null;
  useEffect(() => {
    if (naming) folderInput.current?.focus();
  }, [naming]);

  async function load(more: boolean) {
    const gen = ++generation.current;
    try {
      const page = shared ? await sharedWithMe(more ? cursor : null) : await listFolder(folderId, searching, more ? cursor : null);
      if (gen !== generation.current) return;
      remember(page.items);
      setItems((cur) => (more ? [...cur, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
      setLoaded(true);
      setError(null);
      if (shared) setSharedIds((s) => new Set([...s, ...page.items.map((f) => f.id)]));
    } catch (e) {
      if (gen === generation.current) setError(why(e, "The drive could not be loaded."));
    }
  }

  async function refreshQuota() {
    try {
      setUsage(await loadQuota());
    } catch {
      // The bar stays as it was; the list's own errors are shown.
    }
  }

  useEffect(() => {
    if (reloads > 0) void load(false);
  }, [reloads]);

  // What is shared with me, once: a shared folder's path starts at "Shared with me".
  useEffect(() => {
    sharedWithMe(null).then(
      (p) => setSharedIds((s) => new Set([...s, ...p.items.map((f) => f.id)])),
      () => {},
    );
    void refreshQuota();
  }, []);

  useEffect(() => {
    setSelected(null);
    setLoaded(false);
    setItems([]);
    void load(false);
  }, [folder, searching]);

  useEffect(() => {
    setSearching(null);
    setQuery("");
  }, [folder]);

  // The path of the open folder.
  useEffect(() => {
    if (!folderId) {
      setCrumb(null);
      return;
    }
    let live = true;
    const lookup = async (id: string) => known.current.get(id) ?? findFile(id);
    walkUp(folderId, lookup, sharedIds).then(
      (c) => {
        if (!live) return;
        if (c) setCrumb(c);
        else setError("This folder does not exist, or it is not shared with you.");
      },
      (e: unknown) => live && setError(why(e, "The folder could not be loaded.")),
    );
    return () => {
      live = false;
    };
  }, [folderId, sharedIds]);

  // Something shared with me just now: "Shared with me" shows it without a reload.
  useEffect(
    () =>
      subscribe((e) => {
        if (e.type === "file.shared" && shared) void load(false);
      }),
    [shared],
  );

  function patchUpload(key: number, state: (s: UploadState) => UploadState) {
    setUploads((list) => list.map((u) => (u.key === key ? { ...u, state: state(u.state) } : u)));
  }

  async function uploadAll(files: File[]) {
    if (foreign || files.length === 0) return;
    setNote(null);
    const rows: UploadRow[] = files.map((f) => ({ key: ++uploadKeys, name: f.name, state: { phase: "queued" }, abort: new AbortController() }));
    setUploads((list) => [...list.filter((u) => !isFinal(u.state) || u.state.phase === "failed"), ...rows]);
    const target = folderId;
    // One after another: the quota and the connection are shared.
    for (const [i, file] of files.entries()) {
      const row = rows[i]!;
      if (row.abort.signal.aborted) continue;
      try {
        await uploadFile(file, { parentId: target, signal: row.abort.signal }, (ev) => patchUpload(row.key, (s) => uploadStep(s, ev)));
        if (shownFolder.current === target) setReloads((n) => n + 1);
      } catch {
        // Shown on the upload's own row.
      }
    }
    void refreshQuota();
  }

  async function addFolder(e: Event) {
    e.preventDefault();
    const name = (newFolder ?? "").trim();
    if (!name) return;
    try {
      await createFolder(name, folderId);
      setNewFolder(null);
      setNote(`Folder “${name}” created.`);
      void load(false);
    } catch (err) {
      setError(why(err, "The folder could not be created."));
    }
  }

  async function download(f: FileView) {
    try {
      await downloadFile(f.id);
    } catch (e) {
      setError(why(e, "The download could not start.", f.name));
    }
  }

  function open(f: FileView) {
    if (f.is_folder) navigate({ name: "drive", folder: f.id });
    else setSelected(f);
  }

  // Someone else's folder (or the list of what is shared): no uploads or new folders here.
  const foreign = shared || crumb?.root === "shared";
  const heading = shared ? "Shared with me" : searching ? `Search: ${searching}` : (crumb?.folders[crumb.folders.length - 1]?.name ?? "My drive");

  return (
    <section class="drive" aria-labelledby="drive-heading">
      <header class="drive-header">
        <nav aria-label="Drive" class="drive-tabs">
          {/* Phones show the drive or the list: this is the way back. */}
          <BackToConversations />
          <a
            href="/drive"
            aria-current={!shared && !folderId ? "page" : undefined}
            onClick={(e) => {
              e.preventDefault();
              navigate({ name: "drive", folder: null });
            }}
          >
            My drive
          </a>
          <a
            href="/drive/shared"
            aria-current={shared ? "page" : undefined}
            onClick={(e) => {
              e.preventDefault();
              navigate({ name: "drive-shared" });
            }}
          >
            Shared with me
          </a>
        </nav>
        {usage && (
          <div class="quota">
            <label>
              Storage
              <meter min={0} max={Math.max(1, usage.quota)} value={usage.used + usage.reserved} high={usage.quota * 0.9} optimum={0}>
                {Math.round(quotaFraction(usage) * 100)} %
              </meter>
            </label>
            <span class="meta">
              {formatSize(usage.used + usage.reserved)} of {formatSize(usage.quota)} used
            </span>
          </div>
        )}
      </header>

      {folderId && crumb && (
        <nav aria-label="Folder path" class="crumbs">
          <ol>
            <li>
              {crumb.root === "shared" ? (
                <a href="/drive/shared" onClick={(e) => (e.preventDefault(), navigate({ name: "drive-shared" }))}>
                  Shared with me
                </a>
              ) : (
                <a href="/drive" onClick={(e) => (e.preventDefault(), navigate({ name: "drive", folder: null }))}>
                  My drive
                </a>
              )}
            </li>
            {crumb.folders.map((f, i) => {
              const last = i === crumb.folders.length - 1;
              return (
                <li key={f.id}>
                  <a
                    href={`/drive/${f.id}`}
                    aria-current={last ? "page" : undefined}
                    onClick={(e) => (e.preventDefault(), navigate({ name: "drive", folder: f.id }))}
                  >
                    {f.name}
                  </a>
                </li>
              );
            })}
          </ol>
        </nav>
      )}

      <h1 id="drive-heading">{heading}</h1>

      {!foreign && (
        <div class="drive-toolbar">
          <form
            role="search"
            class="drive-search"
            onSubmit={(e) => {
              e.preventDefault();
              setSearching(query.trim() || null);
            }}
          >
            <label>
              <span class="visually-hidden">Search files by name</span>
              <input type="search" placeholder="Search files by name" value={query} maxLength={255} onInput={(e) => setQuery(e.currentTarget.value)} />
            </label>
            <button type="submit" class="secondary">
              Search
            </button>
            {searching && (
              <button type="button" class="secondary" onClick={() => (setQuery(""), setSearching(null))}>
                Clear search
              </button>
            )}
          </form>
          <button type="button" onClick={() => input.current?.click()}>
            Upload
          </button>
          <input
            ref={input}
            type="file"
            multiple
            hidden
            aria-label="Files to upload"
            onChange={(e) => {
              const files = [...(e.currentTarget.files ?? [])];
              e.currentTarget.value = "";
              void uploadAll(files);
            }}
          />
          <button type="button" class="secondary" onClick={() => setNewFolder(newFolder === null ? "" : null)} aria-expanded={newFolder !== null}>
            New folder
          </button>
        </div>
      )}

      {newFolder !== null && (
        <form class="drive-inline" onSubmit={addFolder}>
          <label>
            Folder name
            <input required maxLength={255} value={newFolder} onInput={(e) => setNewFolder(e.currentTarget.value)} ref={folderInput} />
          </label>
          <button type="submit">Create folder</button>
          <button type="button" class="secondary" onClick={() => setNewFolder(null)}>
            Cancel
          </button>
        </form>
      )}

      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Uploads">
          {uploads.map((u) => {
            const pct = uploadPercent(u.state);
            return (
              <li key={u.key} class={u.state.phase}>
                <span class="name">{u.name}</span>
                {pct !== null && !isFinal(u.state) && <progress max={100} value={pct} aria-label={`Uploading ${u.name}`} />}
                <span class={u.state.phase === "failed" ? "error" : "meta"} role={u.state.phase === "failed" ? "alert" : undefined}>
                  {uploadLabel(u.state)}
                </span>
                {isFinal(u.state) ? (
                  <button type="button" class="link" aria-label={`Dismiss ${u.name}`} onClick={() => setUploads((l) => l.filter((x) => x.key !== u.key))}>
                    Dismiss
                  </button>
                ) : (
                  <button
                    type="button"
                    class="link"
                    aria-label={`Cancel upload of ${u.name}`}
                    onClick={() => {
                      u.abort.abort();
                      patchUpload(u.key, (s) => uploadStep(s, { type: "cancel" }));
                    }}
                  >
                    Cancel
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}

      <ErrorLine text={error} />
      <StatusLine text={note} />

      <div class="drive-body">
        <div
          class={`drive-list${dragging ? " dragging" : ""}`}
          onDragOver={(e) => {
            if (foreign || !e.dataTransfer?.types.includes("Files")) return;
            e.preventDefault();
            e.dataTransfer.dropEffect = "copy";
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            if (foreign) return;
            e.preventDefault();
            setDragging(false);
            void uploadAll([...(e.dataTransfer?.files ?? [])]);
          }}
        >
          {!foreign && <p class="hint-small drop-hint">Drop files here to upload them{folderId ? " to this folder" : ""}.</p>}
          <table class="files" aria-label="Files">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" class="size">
                  Size
                </th>
                <th scope="col" class="type">
                  Type
                </th>
                <th scope="col" class="modified">
                  Modified
                </th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((f) => (
                <tr key={f.id} class={selected?.id === f.id ? "current" : undefined}>
                  <td class="name">
                    {f.is_folder ? (
                      <a
                        class="folder-link"
                        href={`/drive/${f.id}`}
                        onClick={(e) => {
                          e.preventDefault();
                          open(f);
                        }}
                      >
                        {f.name}
                      </a>
                    ) : (
                      <button type="button" class="link name-button" aria-pressed={selected?.id === f.id} onClick={() => setSelected(selected?.id === f.id ? null : f)}>
                        {f.name}
                      </button>
                    )}
                    {f.status !== "ready" && <span class="tag">Uploading</span>}
                  </td>
                  <td class="size">{f.is_folder ? "" : formatSize(f.size)}</td>
                  <td class="type">{typeLabel(f.is_folder, f.content_type)}</td>
                  <td class="modified">
                    <time dateTime={f.updated_at}>{dateTime(f.updated_at)}</time>
                  </td>
                  <td class="actions">
                    {!f.is_folder && f.status === "ready" && (
                      <button type="button" class="secondary" aria-label={`Download ${f.name}`} onClick={() => void download(f)}>
                        Download
                      </button>
                    )}
                    <button type="button" class={f.is_folder ? "secondary" : "secondary details-file"} aria-label={`Details of ${f.name}`} onClick={() => setSelected(selected?.id === f.id ? null : f)}>
                      Details
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {loaded && items.length === 0 && !error && (
            <p class="hint">
              {shared ? "Nothing is shared with you yet." : searching ? "No file has that in its name." : "This folder is empty. Upload files, or drop them here."}
            </p>
          )}
          {cursor && (
            <button type="button" class="secondary more" onClick={() => void load(true)}>
              Load more
            </button>
          )}
        </div>
        {selected && (
          <FileDetails
            key={selected.id}
            file={selected}
            owned={selected.owner_id === me}
            conversations={conversations}
            conversationName={conversationName}
            onChanged={(f) => {
              remember([f]);
              setSelected(f);
              setItems((list) => (f.parent_id === selected.parent_id || shared || searching ? list.map((x) => (x.id === f.id ? f : x)) : list.filter((x) => x.id !== f.id)));
              void refreshQuota();
            }}
            onDeleted={(id) => {
              setSelected(null);
              setItems((list) => list.filter((x) => x.id !== id));
              setNote("Deleted.");
              void refreshQuota();
            }}
            onClose={() => setSelected(null)}
          />
        )}
      </div>
    </section>
  );
}
