// A one-line outcome under a form: a success read out politely (role="status"), a failure
// announced at once (role="alert").

export type Note = { ok: boolean; text: string } | null;

export function NoteLine({ note }: { note: Note }) {
  if (!note) return null;
  return (
    <p class={note.ok ? "ok" : "error"} role={note.ok ? "status" : "alert"}>
      {note.text}
    </p>
  );
}

/** A failure, announced at once (role="alert"); nothing when there is none. */
export function ErrorLine({ text }: { text: string | null | undefined }) {
  if (!text) return null;
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

/** A success, read out politely (role="status"); nothing when there is none. */
export function StatusLine({ text }: { text: string | null | undefined }) {
  if (!text) return null;
  return (
    <p class="ok" role="status">
      {text}
    </p>
  );
}
