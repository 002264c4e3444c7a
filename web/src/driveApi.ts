// The drive's calls: the typed client for the API, and for the bytes an XMLHttpRequest PUT to
// the ticket's signed URL (fetch has no upload progress). Downloads go to a signed URL through an
// anchor: the browser saves the file (Content-Disposition: attachment); nothing of a user's file is
// ever rendered in the app's own origin.

import { ApiFailure, type Schemas, api, failure, http } from "./api/client";
import { type UploadEvent, contentTypeFor, driveErrorMessage, nameVariant, settableHeaders } from "./drive";

export type FileView = Schemas["FileView"];
export type QuotaView = Schemas["QuotaView"];
export type ShareView = Schemas["ShareView"];
export type LinkView = Schemas["LinkView"];
export type VersionView = Schemas["VersionView"];

export const PAGE_SIZE = 50;

export function listFolder(parentId: string | null, q: string | null, cursor: string | null) {
  return api((headers) =>
    http.GET("/v1/files", {
      headers,
      params: {
        query: {
          limit: PAGE_SIZE,
          ...(parentId && !q ? { parent_id: parentId } : {}),
          ...(q ? { q } : {}),
          ...(cursor ? { cursor } : {}),
        },
      },
    }),
  );
}

export function sharedWithMe(cursor: string | null) {
  return api((headers) =>
    http.GET("/v1/files/shared-with-me", { headers, params: { query: { limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) } } }),
  );
}

export function getFile(id: string) {
  return api((headers) => http.GET("/v1/files/{id}", { headers, params: { path: { id } } }));
}

/** A file or folder, or null when it does not exist for the caller (404). */
export async function findFile(id: string): Promise<FileView | null> {
  try {
    return await getFile(id);
  } catch (e) {
    if (e instanceof ApiFailure && (e.status === 404 || e.status === 403)) return null;
    throw e;
  }
}

const infoCache = new Map<string, Promise<FileView | null>>();

/** A file's view for showing an attachment, fetched once per page load. */
export function attachmentInfo(id: string): Promise<FileView | null> {
  let p = infoCache.get(id);
  if (!p) {
    p = findFile(id).catch((e: unknown) => {
      infoCache.delete(id);
      throw e;
    });
    infoCache.set(id, p);
  }
  return p;
}

export function quota() {
  return api((headers) => http.GET("/v1/storage/quota", { headers }));
}

export function createFolder(name: string, parentId: string | null) {
  return api((headers) => http.POST("/v1/folders", { headers, body: { name, parent_id: parentId } }));
}

export function patchFile(id: string, body: { name?: string; parent_id?: string | null }) {
  return api((headers) => http.PATCH("/v1/files/{id}", { headers, params: { path: { id } }, body }));
}

export function deleteFile(id: string) {
  return api((headers) => http.DELETE("/v1/files/{id}", { headers, params: { path: { id } } }));
}

/** Gets a short-lived signed URL and lets the browser save what it serves. */
export async function downloadFile(id: string): Promise<void> {
  const link = await api((headers) => http.GET("/v1/files/{id}/download", { headers, params: { path: { id } } }));
  saveFrom(link.download_url);
}

/** Navigates an anchor to a signed download URL (served as an attachment, sandboxed). */
export function saveFrom(url: string): void {
  const a = document.createElement("a");
  a.href = url;
  a.rel = "noopener noreferrer";
  a.download = "";
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}

async function sha256Hex(blob: Blob): Promise<string | null> {
  // Only in secure contexts (https, localhost); elsewhere the server hashes what arrives.
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The PUT of the bytes to a signed URL, reporting progress; rejects with ApiFailure. */
function putBytes(
  url: string,
  headers: Record<string, string>,
  body: Blob,
  progress: (loaded: number, total: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [k, v] of settableHeaders(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => progress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let parsed: unknown;
      try {
        parsed = JSON.parse(xhr.responseText);
      } catch {
        parsed = undefined;
      }
      reject(failure(xhr.status, parsed));
    };
    xhr.onerror = () => reject(failure(0, undefined));
    xhr.onabort = () => reject(new ApiFailure(0, "CANCELLED", "cancelled"));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

/** The first n for which nameVariant(name, n) is not taken in the folder (by a name search). */
async function firstFreeVariant(name: string, parentId: string | null): Promise<number> {
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  try {
    const page = await api((headers) => http.GET("/v1/files", { headers, params: { query: { q: stem.slice(0, 255), limit: 100 } } }));
    const taken = new Set(page.items.filter((f) => (f.parent_id ?? null) === parentId).map((f) => f.name));
    let n = 1;
    while (taken.has(nameVariant(name, n)) && n < 100) n++;
    return n;
  } catch {
    return 1;
  }
}

export interface UploadOptions {
  parentId?: string | null;
  /** A new version of this file instead of a new file. */
  versionOf?: string;
  /** On a name already taken, try "name (2).ext", "name (3).ext"… (attachments). */
  renameOnConflict?: boolean;
  signal?: AbortSignal;
}

/**
 * init → PUT the bytes (with progress) → complete. `step` follows the upload state machine of
 * drive.ts; a failure is reported there with a message for the person and also thrown.
 */
export async function uploadFile(file: File, opts: UploadOptions, step: (e: UploadEvent) => void): Promise<FileView> {
  step({ type: "start" });
  let fileId: string | null = null;
  try {
    const sha256 = await sha256Hex(file);
    const content_type = contentTypeFor(file.name, file.type);
    let ticket: Schemas["UploadTicket"];
    if (opts.versionOf) {
      const id = opts.versionOf;
      ticket = await api((headers) =>
        http.POST("/v1/files/{id}/versions", { headers, params: { path: { id } }, body: { size: file.size, content_type, sha256 } }),
      );
    } else {
      // A name taken in the folder would be refused (409): start from the first free variant.
      const first = opts.renameOnConflict ? await firstFreeVariant(file.name, opts.parentId ?? null) : 1;
      for (let n = first; ; n++) {
        try {
          const name = nameVariant(file.name, n);
          ticket = await api((headers) =>
            http.POST("/v1/files/uploads", {
              headers,
              body: { name, size: file.size, content_type, sha256, parent_id: opts.parentId ?? null },
            }),
          );
          break;
        } catch (e) {
          if (!(opts.renameOnConflict && e instanceof ApiFailure && e.code === "CONFLICT" && n < 20)) throw e;
        }
      }
      fileId = ticket.file_id;
    }
    if (opts.signal?.aborted) throw new ApiFailure(0, "CANCELLED", "cancelled");
    step({ type: "ticket" });
    await putBytes(ticket.upload_url, ticket.headers, file, (loaded, total) => step({ type: "progress", loaded, total }), opts.signal);
    step({ type: "sent" });
    const id = ticket.file_id;
    const view = await api((headers) => http.POST("/v1/files/{id}/complete", { headers, params: { path: { id } } }));
    step({ type: "completed", fileId: view.id });
    return view;
  } catch (e) {
    const f = e instanceof ApiFailure ? e : failure(0, undefined);
    if (f.code === "CANCELLED") {
      step({ type: "cancel" });
      // A new file's pending upload: give its reservation back now (a version's expires by itself).
      if (fileId) void deleteFile(fileId).catch(() => {});
    } else {
      step({ type: "failed", message: driveErrorMessage(f, file.name) });
    }
    throw f;
  }
}

/** A user's id by exact username (the search route matches prefixes). */
export async function userIdByName(username: string): Promise<string> {
  const want = username.trim().replace(/^@/, "").toLowerCase();
  const page = await api((headers) => http.GET("/v1/users", { headers, params: { query: { q: want, limit: 20 } } }));
  const user = page.items.find((u) => u.username.toLowerCase() === want);
  if (!user) throw new Error(`No user is called “${want}”.`);
  return user.id;
}

const profiles = new Map<string, Promise<string>>();

/** "Display Name (@username)" of a user id, once per page load. */
export function userLabel(id: string): Promise<string> {
  let p = profiles.get(id);
  if (!p) {
    p = api((headers) => http.GET("/v1/users/{id}", { headers, params: { path: { id } } })).then(
      (u) => `${u.display_name} (@${u.username})`,
      () => "Someone",
    );
    profiles.set(id, p);
  }
  return p;
}

/** A message's text for an error of any kind. */
export function why(e: unknown, otherwise: string, name?: string): string {
  if (e instanceof ApiFailure) return driveErrorMessage(e, name);
  if (e instanceof Error && e.message) return e.message;
  return otherwise;
}
