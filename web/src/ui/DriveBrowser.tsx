// A modal that browses the caller's own drive, folder by folder (or by a name search): to choose
// a folder (move) or a file (attach from the drive).

import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { formatSize } from "../size";
import { type FileView, listFolder, why } from "../driveApi";
import { ErrorLine } from "./Note";

interface Props {
  title: string;
  mode: "folder" | "file";
  /** A folder that may not be entered or chosen (the one being moved). */
  exclude?: string;
  /** Shown above the list (e.g. the upload of the attach dialog). */
  children?: ComponentChildren;
  onPick: (target: FileView | null) => void;
  onClose: () => void;
}

export function PickDialog({ title, mode, exclude, children, onPick, onClose }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const [path, setPath] = useState<FileView[]>([]);
  const [items, setItems] = useState<FileView[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [q, setQ] = useState("");
  const [searching, setSearching] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const here = path[path.length - 1] ?? null;

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  async function load(more: boolean) {
    try {
      const page = await listFolder(here?.id ?? null, searching, more ? cursor : null);
      const shown = page.items.filter((f) => (mode === "folder" ? f.is_folder : true) && f.id !== exclude);
      setItems((cur) => (more ? [...cur, ...shown] : shown));
      setCursor(page.next_cursor ?? null);
      setError(null);
    } catch (e) {
      setError(why(e, "The drive could not be loaded."));
    }
  }

  useEffect(() => {
    void load(false);
  }, [here?.id, searching]);

  return (
    <dialog ref={ref} class="pick-dialog" aria-labelledby="pick-title" onClose={onClose}>
      <h2 id="pick-title">{title}</h2>
      {children}
      {mode === "file" && (
        <form
          class="pick-search"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            setSearching(q.trim() || null);
          }}
        >
          <label>
            Search your drive
            <input type="search" value={q} maxLength={255} onInput={(e) => setQ(e.currentTarget.value)} />
          </label>
          <button type="submit" class="secondary">
            Search
          </button>
        </form>
      )}
      <nav aria-label="Folder path" class="crumbs">
        <ol>
          <li>
            <button type="button" class="link" onClick={() => (setPath([]), setSearching(null))}>
              My drive
            </button>
          </li>
          {path.map((f, i) => (
            <li key={f.id}>
              <button type="button" class="link" onClick={() => setPath(path.slice(0, i + 1))}>
                {f.name}
              </button>
            </li>
          ))}
        </ol>
      </nav>
      <ErrorLine text={error} />
      <ul class="pick-list" aria-label={mode === "folder" ? "Folders" : "Drive files"}>
        {items.map((f) => (
          <li key={f.id}>
            {f.is_folder ? (
              <button type="button" class="link folder-link" onClick={() => (setSearching(null), setPath([...path, f]))}>
                {f.name}
              </button>
            ) : (
              <>
                <span class="name">{f.name}</span> <span class="meta">{formatSize(f.size)}</span>
                {mode === "file" && f.status === "ready" && (
                  <button type="button" class="secondary" aria-label={`Attach ${f.name}`} onClick={() => onPick(f)}>
                    Attach
                  </button>
                )}
              </>
            )}
          </li>
        ))}
      </ul>
      {items.length === 0 && !error && <p class="hint">{mode === "folder" ? "No folders here." : "Nothing here."}</p>}
      {cursor && (
        <button type="button" class="secondary" onClick={() => void load(true)}>
          Load more
        </button>
      )}
      <div class="dialog-actions">
        {mode === "folder" && (
          <button type="button" onClick={() => onPick(here)}>
            Move here{here ? "" : " (My drive)"}
          </button>
        )}
        <button type="button" class="secondary" onClick={() => ref.current?.close()}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
