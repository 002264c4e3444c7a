import { describe, expect, it } from "vitest";
import {
  MAX_DEPTH,
  type UploadEvent,
  type UploadState,
  contentTypeFor,
  driveErrorMessage,
  localToIso,
  nameVariant,
  quotaFraction,
  settableHeaders,
  typeLabel,
  uploadLabel,
  uploadPercent,
  uploadStep,
  walkUp,
} from "./drive";

describe("content types", () => {
  it("follow the server's extension table before the browser's guess", () => {
    expect(contentTypeFor("notes.md", "")).toBe("text/markdown");
    expect(contentTypeFor("table.CSV", "application/vnd.ms-excel")).toBe("text/csv");
    expect(contentTypeFor("a.wav", "audio/x-wav")).toBe("audio/wav");
    expect(contentTypeFor("photo.JPEG", "image/jpeg")).toBe("image/jpeg");
    expect(contentTypeFor("clip.webm", "audio/webm")).toBe("audio/webm");
    expect(contentTypeFor("clip.webm", "video/webm")).toBe("video/webm");
  });
  it("fall back to the browser's type, then octet-stream (which the server refuses clearly)", () => {
    expect(contentTypeFor("x.bmp", "image/bmp")).toBe("image/bmp");
    expect(contentTypeFor("noext", "")).toBe("application/octet-stream");
    expect(contentTypeFor(".hidden", "")).toBe("application/octet-stream");
  });
  it("have short labels", () => {
    expect(typeLabel(true, null)).toBe("Folder");
    expect(typeLabel(false, "application/pdf")).toBe("PDF");
    expect(typeLabel(false, "image/png")).toBe("PNG image");
    expect(typeLabel(false, "text/plain")).toBe("Text");
    expect(typeLabel(false, null)).toBe("File");
  });
});

describe("the signed PUT's headers", () => {
  it("leave out what a script may not set (the browser sends Content-Length itself)", () => {
    expect(
      settableHeaders({ "Content-Length": "12", "Content-Type": "text/plain", "If-None-Match": "*", "x-amz-checksum-sha256": "abc", Host: "s3" }),
    ).toEqual([
      ["Content-Type", "text/plain"],
      ["If-None-Match", "*"],
      ["x-amz-checksum-sha256", "abc"],
    ]);
    expect(settableHeaders({ "Sec-Fetch-Mode": "x", "Proxy-Authorization": "y" })).toEqual([]);
  });
});

describe("name variants", () => {
  it("number a taken name before its extension", () => {
    expect(nameVariant("report.pdf", 1)).toBe("report.pdf");
    expect(nameVariant("report.pdf", 2)).toBe("report (2).pdf");
    expect(nameVariant("archive.tar.gz", 3)).toBe("archive.tar (3).gz");
    expect(nameVariant("README", 2)).toBe("README (2)");
  });
});

describe("the breadcrumb", () => {
  const folders = new Map([
    ["a", { id: "a", name: "Work", parent_id: null }],
    ["b", { id: "b", name: "2026", parent_id: "a" }],
    ["c", { id: "c", name: "Taxes", parent_id: "b" }],
    ["s", { id: "s", name: "Their folder", parent_id: "hidden" }],
    ["t", { id: "t", name: "Inside", parent_id: "s" }],
    ["loop1", { id: "loop1", name: "L1", parent_id: "loop2" }],
    ["loop2", { id: "loop2", name: "L2", parent_id: "loop1" }],
  ]);
  const lookup = async (id: string) => folders.get(id) ?? null;

  it("walks up to the caller's own root", async () => {
    const c = await walkUp("c", lookup);
    expect(c?.root).toBe("mine");
    expect(c?.folders.map((f) => f.name)).toEqual(["Work", "2026", "Taxes"]);
  });
  it("starts at 'Shared with me' when a parent cannot be seen", async () => {
    const c = await walkUp("t", lookup);
    expect(c?.root).toBe("shared");
    expect(c?.folders.map((f) => f.name)).toEqual(["Their folder", "Inside"]);
  });
  it("stops at a folder shared with the caller, even when its parents are visible", async () => {
    const c = await walkUp("c", lookup, new Set(["b"]));
    expect(c).toEqual({ root: "shared", folders: [folders.get("b"), folders.get("c")] });
  });
  it("is null for a folder that cannot be seen, and never loops", async () => {
    expect(await walkUp("nope", lookup)).toBeNull();
    const c = await walkUp("loop1", lookup);
    expect(c?.folders.length).toBe(2);
    let n = 0;
    const deep = await walkUp("x0", async (id) => ({ id, name: id, parent_id: `x${++n}` }));
    expect(deep?.folders.length).toBe(MAX_DEPTH);
  });
});

describe("the upload state machine", () => {
  const run = (events: UploadEvent[]): UploadState => events.reduce(uploadStep, { phase: "queued" } as UploadState);

  it("goes queued → starting → sending → finishing → done", () => {
    const s = run([
      { type: "start" },
      { type: "ticket" },
      { type: "progress", loaded: 50, total: 200 },
      { type: "progress", loaded: 100, total: 200 },
    ]);
    expect(s).toEqual({ phase: "sending", loaded: 100, total: 200 });
    expect(uploadPercent(s)).toBe(50);
    expect(uploadLabel(s)).toBe("Uploading, 50 %");
    const done = run([{ type: "start" }, { type: "ticket" }, { type: "sent" }, { type: "completed", fileId: "f1" }]);
    expect(done).toEqual({ phase: "done", fileId: "f1" });
    expect(uploadPercent(done)).toBe(100);
  });
  it("never moves progress backwards or past the total", () => {
    const s = run([
      { type: "start" },
      { type: "ticket" },
      { type: "progress", loaded: 150, total: 200 },
      { type: "progress", loaded: 20, total: 200 },
    ]);
    expect(s).toEqual({ phase: "sending", loaded: 150, total: 200 });
    expect(run([{ type: "start" }, { type: "ticket" }, { type: "progress", loaded: 999, total: 200 }])).toEqual({
      phase: "sending",
      loaded: 200,
      total: 200,
    });
  });
  it("ignores events out of order and anything after the end", () => {
    expect(run([{ type: "completed", fileId: "x" }])).toEqual({ phase: "queued" });
    expect(run([{ type: "start" }, { type: "sent" }])).toEqual({ phase: "starting" });
    const failed = run([{ type: "start" }, { type: "failed", message: "too large" }, { type: "ticket" }, { type: "completed", fileId: "x" }]);
    expect(failed).toEqual({ phase: "failed", message: "too large" });
    expect(uploadLabel(failed)).toBe("Failed: too large");
    expect(run([{ type: "start" }, { type: "ticket" }, { type: "cancel" }, { type: "progress", loaded: 1, total: 2 }])).toEqual({ phase: "cancelled" });
    expect(uploadPercent({ phase: "starting" })).toBeNull();
  });
});

describe("error messages", () => {
  it("say what 413, 415 and 507 mean", () => {
    expect(driveErrorMessage({ status: 413, code: "PAYLOAD_TOO_LARGE", message: "files are limited to 100 bytes" }, "big.pdf")).toBe(
      "“big.pdf” is too large: files are limited to 100 bytes.",
    );
    expect(driveErrorMessage({ status: 415, code: "UNSUPPORTED_MEDIA_TYPE", message: "files of type x are not accepted" }, "a.exe")).toContain(
      "“a.exe” was refused: this type of file is not accepted",
    );
    expect(
      driveErrorMessage({ status: 507, code: "QUOTA_EXCEEDED", message: "q", details: { used: 1024, quota: 2048, requested: 4096 } }, "v.mp4"),
    ).toBe("Not enough storage left for “v.mp4”. You use 1 KB of 2 KB; this needs 4 KB. Delete some files and try again.");
    expect(driveErrorMessage({ status: 507, code: "QUOTA_EXCEEDED", message: "q" })).toBe(
      "Not enough storage left for this file. Delete some files and try again.",
    );
    expect(driveErrorMessage({ status: 409, code: "CONFLICT", message: "a file or folder of that name is already there" })).toBe(
      "A file or folder of that name is already there.",
    );
    expect(driveErrorMessage({ status: 400, code: "VALIDATION_ERROR", message: "name is bad" })).toBe("name is bad");
  });
});

describe("other helpers", () => {
  it("convert a datetime-local value and measure the quota", () => {
    expect(localToIso("")).toBeNull();
    expect(localToIso("not a date")).toBeNull();
    expect(localToIso("2030-01-02T03:04")).toBe(new Date("2030-01-02T03:04").toISOString());
    expect(quotaFraction({ used: 25, reserved: 25, quota: 100 })).toBe(0.5);
    expect(quotaFraction({ used: 250, reserved: 0, quota: 100 })).toBe(1);
    expect(quotaFraction({ used: 0, reserved: 0, quota: 0 })).toBe(1);
  });
});
