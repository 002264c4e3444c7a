// The files attached to a message: each one's name (as text) and size, and a download through a
// signed URL (never shown inline in the app's origin).

import { useEffect, useState } from "preact/hooks";
import { formatSize } from "../size";
import { type FileView, attachmentInfo, downloadFile, why } from "../driveApi";
import "./drive.css";

function Attachment({ id }: { id: string }) {
  const [file, setFile] = useState<FileView | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    attachmentInfo(id).then(setFile, () => setFile(null));
  }, [id]);

  if (file === undefined) return <li class="attachment">…</li>;
  if (file === null) return <li class="attachment meta">A file that is no longer available</li>;
  return (
    <li class="attachment">
      <span class="name">{file.name}</span> <span class="meta">{formatSize(file.size)}</span>{" "}
      <button
        type="button"
        class="link"
        aria-label={`Download ${file.name}`}
        onClick={() => void downloadFile(file.id).catch((e: unknown) => setError(why(e, "The download could not start.", file.name)))}
      >
        Download
      </button>
      {error && (
        <span class="error" role="alert">
          {" "}
          {error}
        </span>
      )}
    </li>
  );
}

export function Attachments({ ids }: { ids: readonly string[] }) {
  if (ids.length === 0) return null;
  return (
    <ul class="attachments" aria-label="Attachments">
      {ids.map((id) => (
        <Attachment key={id} id={id} />
      ))}
    </ul>
  );
}
