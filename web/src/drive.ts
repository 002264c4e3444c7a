// The drive's pure logic: media types by extension, the headers a browser may set on the
// signed PUT, the breadcrumb walk, the upload state machine and what each API error means to a
// person. No DOM and no network here (tested in drive.test.ts).

import { formatSize } from "./size";

/** The media types the server knows per extension (API.md §12; crates/sc-core/src/files.rs). */
const BY_EXTENSION: Record<string, string> = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  heic: "image/heic",
  heif: "image/heic",
  mp4: "video/mp4",
  m4v: "video/mp4",
  webm: "video/webm",
  mov: "video/quicktime",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  opus: "audio/ogg",
  wav: "audio/wav",
  weba: "audio/webm",
  m4a: "audio/mp4",
  pdf: "application/pdf",
  txt: "text/plain",
  text: "text/plain",
  log: "text/plain",
  md: "text/markdown",
  markdown: "text/markdown",
  csv: "text/csv",
  json: "application/json",
  zip: "application/zip",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
};

export function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

/**
 * The content_type to declare for a file: the server's type for its extension (browsers disagree
 * on .md, .csv, .wav…), else what the browser says, else application/octet-stream (which the
 * server then refuses with a clear 415).
 */
export function contentTypeFor(name: string, browserType: string): string {
  const ext = extensionOf(name);
  if (ext === "webm" && browserType.startsWith("audio/")) return "audio/webm";
  return BY_EXTENSION[ext] ?? (browserType || "application/octet-stream");
}

/** A short word for a type column: "Folder", "PDF", "PNG image", "Text"… */
export function typeLabel(isFolder: boolean, contentType: string | null | undefined): string {
  if (isFolder) return "Folder";
  const t = (contentType ?? "").toLowerCase();
  if (!t) return "File";
  if (t === "application/pdf") return "PDF";
  if (t.includes("wordprocessingml")) return "Word document";
  if (t.includes("spreadsheetml")) return "Spreadsheet";
  if (t.includes("presentationml")) return "Presentation";
  if (t === "application/zip") return "ZIP archive";
  if (t === "application/json") return "JSON";
  if (t === "text/csv") return "CSV";
  if (t === "text/markdown") return "Markdown";
  if (t.startsWith("text/")) return "Text";
  const [kind, sub] = t.split("/");
  const k = kind === "image" ? "image" : kind === "video" ? "video" : kind === "audio" ? "audio" : "";
  return k ? `${(sub ?? "").toUpperCase()} ${k}` : t;
}

/**
 * Headers a page's script may not set (the browser refuses them and logs an error): the signed
 * PUT's Content-Length, for one, is what the browser sends by itself.
 */
const FORBIDDEN_HEADERS = new Set([
  "accept-charset",
  "accept-encoding",
  "access-control-request-headers",
  "access-control-request-method",
  "connection",
  "content-length",
  "cookie",
  "cookie2",
  "date",
  "dnt",
  "expect",
  "host",
  "keep-alive",
  "origin",
  "referer",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "via",
]);

/** The ticket's headers that a script can set on the PUT (the rest the browser sends itself). */
export function settableHeaders(headers: Record<string, string>): [string, string][] {
  return Object.entries(headers).filter(([k]) => {
    const n = k.toLowerCase();
    return !FORBIDDEN_HEADERS.has(n) && !n.startsWith("proxy-") && !n.startsWith("sec-");
  });
}

/** "report.pdf" → "report (2).pdf" for n = 2 (a name not taken yet in the drive's root). */
export function nameVariant(name: string, n: number): string {
  if (n <= 1) return name;
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}

// --- Breadcrumb ---------------------------------------------------------------------------

export interface FolderLike {
  id: string;
  name: string;
  parent_id?: string | null;
}

/** Where a folder's path starts: the caller's own root, or the list of what is shared with them. */
export type PathRoot = "mine" | "shared";

export interface Breadcrumb<F extends FolderLike> {
  root: PathRoot;
  /** From the top (just below the root) down to the folder itself. */
  folders: F[];
}

/** Folders deeper than this are cut (a cycle, were there ever one, cannot loop forever). */
export const MAX_DEPTH = 64;

/**
 * The path to a folder, walking up through `lookup` (null: not found, i.e. not the caller's and
 * not shared with them). A folder that is itself shared with the caller (`sharedIds`) or whose
 * parent the caller cannot see starts at "Shared with me"; one whose chain reaches the top
 * (parent null) is in the caller's own drive.
 */
export async function walkUp<F extends FolderLike>(
  id: string,
  lookup: (id: string) => Promise<F | null>,
  sharedIds: ReadonlySet<string> = new Set(),
): Promise<Breadcrumb<F> | null> {
  const chain: F[] = [];
  let next: string | null | undefined = id;
  const seen = new Set<string>();
  while (next && chain.length < MAX_DEPTH && !seen.has(next)) {
    seen.add(next);
    const f: F | null = await lookup(next);
    if (!f) {
      if (chain.length === 0) return null;
      return { root: "shared", folders: chain.reverse() };
    }
    chain.push(f);
    if (sharedIds.has(f.id)) return { root: "shared", folders: chain.reverse() };
    next = f.parent_id;
  }
  return { root: next ? "shared" : "mine", folders: chain.reverse() };
}

// --- Uploads ------------------------------------------------------------------------------

export type UploadState =
  | { phase: "queued" }
  | { phase: "starting" }
  | { phase: "sending"; loaded: number; total: number }
  | { phase: "finishing" }
  | { phase: "done"; fileId: string }
  | { phase: "failed"; message: string }
  | { phase: "cancelled" };

export type UploadEvent =
  | { type: "start" }
  | { type: "ticket" }
  | { type: "progress"; loaded: number; total: number }
  | { type: "sent" }
  | { type: "completed"; fileId: string }
  | { type: "failed"; message: string }
  | { type: "cancel" };

const FINAL = new Set<UploadState["phase"]>(["done", "failed", "cancelled"]);

export function isFinal(s: UploadState): boolean {
  return FINAL.has(s.phase);
}

/**
 * One upload: queued → starting (init) → sending (the PUT, with progress) → finishing
 * (complete) → done; failed or cancelled from any unfinished phase. Events that do not fit the
 * phase (a late progress event after a failure, say) leave the state as it is.
 */
export function uploadStep(s: UploadState, e: UploadEvent): UploadState {
  if (isFinal(s)) return s;
  switch (e.type) {
    case "failed":
      return { phase: "failed", message: e.message };
    case "cancel":
      return { phase: "cancelled" };
    case "start":
      return s.phase === "queued" ? { phase: "starting" } : s;
    case "ticket":
      return s.phase === "starting" ? { phase: "sending", loaded: 0, total: 0 } : s;
    case "progress":
      if (s.phase !== "sending") return s;
      // Progress never goes back (a retried chunk), and never past the total.
      return { phase: "sending", loaded: Math.max(s.loaded, Math.min(e.loaded, e.total)), total: e.total };
    case "sent":
      return s.phase === "sending" ? { phase: "finishing" } : s;
    case "completed":
      return s.phase === "finishing" ? { phase: "done", fileId: e.fileId } : s;
  }
}

/** 0–100 for a progress bar, or null when the phase has no measure. */
export function uploadPercent(s: UploadState): number | null {
  if (s.phase === "sending") return s.total > 0 ? Math.floor((s.loaded / s.total) * 100) : 0;
  if (s.phase === "finishing" || s.phase === "done") return 100;
  return null;
}

export function uploadLabel(s: UploadState): string {
  switch (s.phase) {
    case "queued":
      return "Waiting";
    case "starting":
      return "Starting…";
    case "sending":
      return `Uploading, ${uploadPercent(s)} %`;
    case "finishing":
      return "Checking…";
    case "done":
      return "Uploaded";
    case "failed":
      return `Failed: ${s.message}`;
    case "cancelled":
      return "Cancelled";
  }
}

// --- Errors -------------------------------------------------------------------------------

interface FailureLike {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** What a failed drive call says to the person (the server's own message where it is the best). */
export function driveErrorMessage(e: FailureLike, name?: string): string {
  const what = name ? `“${name}”` : "The file";
  switch (e.code) {
    case "PAYLOAD_TOO_LARGE":
      return `${what} is too large: ${e.message}.`;
    case "UNSUPPORTED_MEDIA_TYPE":
      return `${what} was refused: this type of file is not accepted (${e.message}).`;
    case "QUOTA_EXCEEDED": {
      const d = e.details ?? {};
      const used = typeof d.used === "number" ? d.used : null;
      const quota = typeof d.quota === "number" ? d.quota : null;
      const requested = typeof d.requested === "number" ? d.requested : null;
      const parts =
        used !== null && quota !== null
          ? ` You use ${formatSize(used)} of ${formatSize(quota)}${requested !== null ? `; this needs ${formatSize(requested)}` : ""}.`
          : "";
      return `Not enough storage left for ${name ? what : "this file"}.${parts} Delete some files and try again.`;
    }
    case "CONFLICT":
      return `${e.message.charAt(0).toUpperCase()}${e.message.slice(1)}.`;
    case "EMAIL_NOT_VERIFIED":
      return "Verify your email address first (Settings can send the mail again).";
    case "NETWORK":
      return "The server cannot be reached. Check your connection, then try again.";
    default:
      return e.message;
  }
}

/** The ISO time of a `datetime-local` value (the reader's zone), or null when empty or invalid. */
export function localToIso(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** The fraction of the quota used, 0–1 (reserved bytes of uploads in flight count as used). */
export function quotaFraction(q: { used: number; reserved: number; quota: number }): number {
  if (q.quota <= 0) return 1;
  return Math.min(1, Math.max(0, (q.used + q.reserved) / q.quota));
}
