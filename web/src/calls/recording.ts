// Recording with consent, in the recorder's browser (the server never sees the media): the call's
// audio mixed together (and one video: the first remote one, else ours) through MediaRecorder;
// the file goes to the recorder's drive (init → PUT to the signed URL → complete) and is then
// attached to the call, where every participant may read it.

import { api, failure, http } from "../api/client";

const TYPES = ["video/webm;codecs=vp8,opus", "video/webm", "audio/webm;codecs=opus", "audio/webm"];

/** The first container type this browser can record, for a recording with or without video. */
export function recordingType(video: boolean, supported: (t: string) => boolean): string | null {
  return TYPES.filter((t) => t.startsWith(video ? "video/" : "audio/")).find(supported) ?? null;
}

/** A drive file name for a recording started at `at` (no characters a name may not hold). */
export function recordingName(at: Date, type: string): string {
  const stamp = at.toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-");
  return `call-recording-${stamp}.${type.startsWith("audio/") ? "weba" : "webm"}`;
}

export class CallRecorder {
  private recorder: MediaRecorder;
  private context: AudioContext;
  private chunks: Blob[] = [];
  private done: Promise<Blob>;
  readonly type: string;
  readonly startedAt = new Date();

  constructor(audio: MediaStream[], video: MediaStreamTrack | null) {
    this.context = new AudioContext();
    const mix = this.context.createMediaStreamDestination();
    for (const s of audio) {
      if (s.getAudioTracks().length > 0) this.context.createMediaStreamSource(s).connect(mix);
    }
    const tracks = [...mix.stream.getAudioTracks(), ...(video ? [video] : [])];
    const type = recordingType(video !== null, (t) => MediaRecorder.isTypeSupported(t));
    if (!type) throw new Error("This browser cannot record the call.");
    this.type = type.split(";")[0]!;
    this.recorder = new MediaRecorder(new MediaStream(tracks), { mimeType: type });
    this.done = new Promise((ok) => {
      this.recorder.onstop = () => ok(new Blob(this.chunks, { type: this.type }));
    });
    this.recorder.ondataavailable = (e) => {
      if (e.data.size > 0) this.chunks.push(e.data);
    };
    this.recorder.start(1000);
  }

  /** Stops and answers the recorded bytes. */
  async stop(): Promise<Blob> {
    if (this.recorder.state !== "inactive") this.recorder.stop();
    const blob = await this.done;
    void this.context.close().catch(() => undefined);
    return blob;
  }
}

/** Uploads a recording to the drive and attaches it to the call. */
export async function saveRecording(callId: string, blob: Blob, name: string): Promise<void> {
  const ticket = await api((headers) =>
    http.POST("/v1/files/uploads", { headers, body: { name, content_type: blob.type, size: blob.size } }),
  );
  // The signed URL takes the bytes without a bearer (API.md §12).
  const put = await fetch(ticket.upload_url, { method: ticket.method || "PUT", headers: ticket.headers, body: blob });
  if (!put.ok) throw failure(put.status, await put.json().catch(() => undefined));
  await api((headers) => http.POST("/v1/files/{id}/complete", { headers, params: { path: { id: ticket.file_id } } }));
  await api((headers) =>
    http.POST("/v1/calls/{id}/recordings", { headers, params: { path: { id: callId } }, body: { file_id: ticket.file_id } }),
  );
}
