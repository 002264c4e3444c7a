// The composer's "Attach": upload a file to the drive's root (a taken name gets " (2)"), or pick
// one of the drive, and send it to the conversation as a file message (`attachments: [id]`).

import { useState } from "preact/hooks";
import { type Message, api, http } from "../api/client";
import { type UploadState, uploadLabel, uploadPercent, uploadStep } from "../drive";
import { type FileView, uploadFile, why } from "../driveApi";
import { newClientMessageId } from "../messages";
import { PickDialog } from "./DriveBrowser";
import "./drive.css";

interface Props {
  conversationId: string;
  onSent: (m: Message) => void;
  onError: (text: string) => void;
}

export function Attach({ conversationId, onSent, onError }: Props) {
  const [open, setOpen] = useState(false);
  const [upload, setUpload] = useState<{ name: string; state: UploadState } | null>(null);

  async function send(file: FileView) {
    const m = await api((headers) =>
      http.POST("/v1/conversations/{id}/messages", {
        headers,
        params: { path: { id: conversationId } },
        body: { client_message_id: newClientMessageId(), kind: "file", attachments: [file.id] },
      }),
    );
    onSent(m);
  }

  async function pick(f: FileView | null) {
    if (!f) return;
    try {
      await send(f);
      setOpen(false);
    } catch (e) {
      onError(why(e, "The file could not be sent.", f.name));
      setOpen(false);
    }
  }

  async function uploadAndSend(file: File) {
    setUpload({ name: file.name, state: { phase: "queued" } });
    let view: FileView;
    try {
      view = await uploadFile(file, { parentId: null, renameOnConflict: true }, (ev) =>
        setUpload((u) => (u ? { ...u, state: uploadStep(u.state, ev) } : u)),
      );
    } catch {
      return; // Shown on the upload's line, with the reason.
    }
    setUpload(null);
    await pick(view);
  }

  const pct = upload ? uploadPercent(upload.state) : null;
  return (
    <>
      <button type="button" class="secondary" onClick={() => setOpen(true)} aria-haspopup="dialog">
        Attach
      </button>
      {open && (
        <PickDialog title="Attach a file" mode="file" onPick={(f) => void pick(f)} onClose={() => (setOpen(false), setUpload(null))}>
          <div class="attach-upload">
            <label class="button-like">
              Upload from this device
              <input
                type="file"
                class="visually-hidden"
                onChange={(e) => {
                  const file = e.currentTarget.files?.[0];
                  e.currentTarget.value = "";
                  if (file) void uploadAndSend(file);
                }}
              />
            </label>
            {upload && (
              <p class={upload.state.phase === "failed" ? "error" : "meta"} role={upload.state.phase === "failed" ? "alert" : "status"}>
                <span class="name">{upload.name}</span>{" "}
                {pct !== null && upload.state.phase !== "done" && <progress max={100} value={pct} aria-label={`Uploading ${upload.name}`} />}{" "}
                {uploadLabel(upload.state)}
              </p>
            )}
            <p class="hint-small">The file goes to your drive; the conversation's members can download it.</p>
          </div>
        </PickDialog>
      )}
    </>
  );
}
