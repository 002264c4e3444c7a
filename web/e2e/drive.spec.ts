// The drive in a real browser against the real server: a file uploaded through the screen comes
// back with the same bytes (Playwright's download, sha256 compared), also dropped files; the
// server's refusals (413, 415, 507) read clearly; folders, rename, versions, move and delete; a
// share reaches the other person's "Shared with me"; a public link with a password downloads in
// a signed-out browser; a file attached in a conversation is downloaded by the other member; and
// no drive screen has a serious accessibility finding, a console error or a CSP violation.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { BrowserContext, Download, Page } from "playwright-core";
import {
  accessibilityProblems,
  apiCall,
  apiUser,
  useSuite,
  watchedContext,
  submitSignIn,
  createAccountInApp,
} from "./harness";

const MAX_FILE = 2 * 1024 * 1024;
const QUOTA = 3 * 1024 * 1024;

const suite = useSuite("drive", { env: { SC_MAX_FILE_SIZE_BYTES: String(MAX_FILE), SC_DEFAULT_QUOTA_BYTES: String(QUOTA) } });
const problems: string[] = [];
const contexts: BrowserContext[] = [];

async function newPage(): Promise<Page> {
  const context = await watchedContext(suite, problems, { acceptDownloads: true });
  contexts.push(context);
  return context.newPage();
}

/** Printable text (the server sniffs text/plain), `size` bytes, different each call. */
function textBytes(size: number): Buffer {
  const alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n";
  const r = randomBytes(size);
  for (let i = 0; i < size; i++) r[i] = alphabet.charCodeAt(r[i]! % alphabet.length);
  return r;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function downloaded(d: Download): Promise<Buffer> {
  const path = await d.path();
  return readFileSync(path);
}

function files(page: Page) {
  return page.getByRole("table", { name: "Files" });
}

function row(page: Page, name: string) {
  return files(page).getByRole("row").filter({ hasText: name });
}

async function uploadThroughButton(page: Page, name: string, buffer: Buffer, mimeType = "text/plain"): Promise<void> {
  const chooser = page.waitForEvent("filechooser");
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await (await chooser).setFiles({ name, mimeType, buffer });
}

async function expectNoA11yProblems(page: Page, where: string): Promise<void> {
  const found = await accessibilityProblems(page);
  expect(found, where).toEqual([]);
}

describe("the drive in the browser", () => {
  let alice: Page;
  let bob: Page;
  const original = textBytes(600 * 1024);

  it("uploads a file with progress and downloads the same bytes", async () => {
    alice = await newPage();
    bob = await newPage();
    await createAccountInApp(alice, "alice", "Alice Liddell");
    await createAccountInApp(bob, "bob", "Bob Builder");

    await alice.getByRole("link", { name: "Drive", exact: true }).click();
    await alice.getByRole("heading", { name: "My drive" }).waitFor();
    await expect.poll(() => alice.url()).toBe(`${suite.server.base}/drive`);
    await alice.getByText("This folder is empty").waitFor();
    await alice.getByText("of 3 MB used").waitFor();
    await expectNoA11yProblems(alice, "empty drive");

    // A folder, and the upload inside it.
    await alice.getByRole("button", { name: "New folder" }).click();
    await alice.getByLabel("Folder name").fill("Projects");
    await alice.getByRole("button", { name: "Create folder" }).click();
    await files(alice).getByRole("link", { name: "Projects" }).click();
    await alice.getByRole("heading", { name: "Projects" }).waitFor();
    const path = alice.getByRole("navigation", { name: "Folder path" });
    await path.getByRole("link", { name: "My drive" }).waitFor();
    await expect.poll(() => path.getByRole("link", { name: "Projects" }).getAttribute("aria-current")).toBe("page");

    // The PUT goes through XMLHttpRequest: its progress shows up as a progress bar.
    let sawProgress = false;
    await alice.route(/\/v1\/blobs\//, async (route) => {
      // Slow enough for the bar to be seen, then on to the server untouched.
      await new Promise((r) => setTimeout(r, 300));
      await route.continue();
    });
    await uploadThroughButton(alice, "notes.txt", original);
    const bar = alice.getByRole("progressbar", { name: "Uploading notes.txt" });
    await bar
      .waitFor({ timeout: 5000 })
      .then(() => (sawProgress = true))
      .catch(() => {});
    await alice.getByRole("list", { name: "Uploads" }).getByText("Uploaded").waitFor();
    await alice.unroute(/\/v1\/blobs\//);
    expect(sawProgress).toBe(true);
    await row(alice, "notes.txt").waitFor();
    await expect.poll(() => row(alice, "notes.txt").textContent()).toContain("600 KB");

    const d = alice.waitForEvent("download");
    await alice.getByRole("button", { name: "Download notes.txt" }).click();
    const got = await downloaded(await d);
    expect(got.length).toBe(original.length);
    expect(sha256(got)).toBe(sha256(original));
    // The page stayed the app: the file was saved, not shown in this origin.
    expect(new URL(alice.url()).pathname).toMatch(/^\/drive\/[0-9a-f-]{36}$/);
    await expectNoA11yProblems(alice, "folder with a file");
  });

  it("takes dropped files, and says clearly what the server refuses", async () => {
    const dropped = textBytes(2000);
    const dt = await alice.evaluateHandle((text) => {
      const t = new DataTransfer();
      t.items.add(new File([text], "dropped.txt", { type: "text/plain" }));
      return t;
    }, dropped.toString("latin1"));
    await alice.locator(".drive-list").dispatchEvent("dragover", { dataTransfer: dt });
    await alice.locator(".drive-list").dispatchEvent("drop", { dataTransfer: dt });
    await row(alice, "dropped.txt").waitFor();

    // 415: a type the server never accepts.
    await uploadThroughButton(alice, "page.html", Buffer.from("<script>alert(1)</script>"), "text/html");
    await alice.getByRole("alert").filter({ hasText: "“page.html” was refused: this type of file is not accepted" }).waitFor();
    // 415 after the bytes: a .pdf that is not a PDF.
    await uploadThroughButton(alice, "fake.pdf", Buffer.from("this is not a pdf at all"), "application/pdf");
    await alice.getByRole("alert").filter({ hasText: "“fake.pdf” was refused" }).waitFor();
    // 413: over the per-file limit.
    await uploadThroughButton(alice, "big.txt", textBytes(MAX_FILE + 1));
    await alice.getByRole("alert").filter({ hasText: "“big.txt” is too large" }).waitFor();
    // 507: two files of 1.5 MB do not fit next to what is there in 3 MB.
    await uploadThroughButton(alice, "half1.txt", textBytes(1536 * 1024));
    await row(alice, "half1.txt").waitFor();
    await uploadThroughButton(alice, "half2.txt", textBytes(1536 * 1024));
    await alice.getByRole("alert").filter({ hasText: "Not enough storage left for “half2.txt”" }).waitFor();
    await expect.poll(() => files(alice).getByText("fake.pdf").count()).toBe(0);
    await expect.poll(() => files(alice).getByText("half2.txt").count()).toBe(0);
  });

  it("renames, keeps versions, moves and deletes", async () => {
    await files(alice).getByRole("button", { name: "Details of half1.txt" }).click();
    const details = alice.getByRole("complementary", { name: "half1.txt" });
    alice.once("dialog", (dlg) => void dlg.accept());
    await details.getByRole("button", { name: "Delete" }).click();
    await expect.poll(() => files(alice).getByText("half1.txt").count()).toBe(0);

    await files(alice).getByRole("button", { name: "Details of notes.txt" }).click();
    let panel = alice.getByRole("complementary", { name: "notes.txt" });
    await panel.getByRole("button", { name: "Rename" }).click();
    await panel.getByLabel("New name").fill("renamed.txt");
    await panel.getByRole("button", { name: "Save name" }).click();
    await files(alice).getByRole("button", { name: "renamed.txt", exact: true }).waitFor();
    panel = alice.getByRole("complementary", { name: "renamed.txt" });

    // A second version, then the first one back (a third, with the first one's bytes).
    const v2 = textBytes(1000);
    const chooser = alice.waitForEvent("filechooser");
    await panel.getByRole("button", { name: "Upload new version" }).click();
    await (await chooser).setFiles({ name: "renamed.txt", mimeType: "text/plain", buffer: v2 });
    const versions = panel.getByRole("list", { name: "Versions" });
    await expect.poll(() => versions.getByRole("listitem").count()).toBe(2);
    let d = alice.waitForEvent("download");
    await panel.getByRole("button", { name: "Download", exact: true }).click();
    expect(sha256(await downloaded(await d))).toBe(sha256(v2));
    await panel.getByRole("button", { name: "Restore version 1" }).click();
    await expect.poll(() => versions.getByRole("listitem").count()).toBe(3);
    d = alice.waitForEvent("download");
    await panel.getByRole("button", { name: "Download", exact: true }).click();
    expect(sha256(await downloaded(await d))).toBe(sha256(original));
    await expectNoA11yProblems(alice, "file details");

    // Move dropped.txt up to the root.
    await files(alice).getByRole("button", { name: "Details of dropped.txt" }).click();
    const dropped = alice.getByRole("complementary", { name: "dropped.txt" });
    await dropped.getByRole("button", { name: "Move" }).click();
    const dialog = alice.getByRole("dialog", { name: "Move “dropped.txt” to…" });
    await dialog.getByRole("list", { name: "Folders" }).getByRole("button", { name: "Projects" }).waitFor();
    await expectNoA11yProblems(alice, "move dialog");
    await dialog.getByRole("button", { name: "Move here (My drive)" }).click();
    await expect.poll(() => files(alice).getByText("dropped.txt").count()).toBe(0);
    await alice.getByRole("navigation", { name: "Folder path" }).getByRole("link", { name: "My drive" }).click();
    await row(alice, "dropped.txt").waitFor();

    // Search by name across folders.
    await alice.getByRole("searchbox", { name: "Search files by name" }).fill("renamed");
    await alice.getByRole("button", { name: "Search", exact: true }).click();
    await alice.getByRole("heading", { name: "Search: renamed" }).waitFor();
    await row(alice, "renamed.txt").waitFor();
    await expect.poll(() => files(alice).getByRole("row").count()).toBe(2); // header + one
    await alice.getByRole("button", { name: "Clear search" }).click();
    await row(alice, "Projects").waitFor();
  });

  it("shares a file with another person, who finds it in Shared with me", async () => {
    await files(alice).getByRole("link", { name: "Projects" }).click();
    await files(alice).getByRole("button", { name: "Details of renamed.txt" }).click();
    const panel = alice.getByRole("complementary", { name: "renamed.txt" });
    await panel.getByLabel("Username").fill("bob");
    await panel.getByRole("button", { name: "Share", exact: true }).click();
    const shares = panel.getByRole("list", { name: "Shared with" });
    await shares.getByText("Bob Builder (@bob)").waitFor();

    await bob.getByRole("link", { name: "Drive", exact: true }).click();
    await bob.getByRole("link", { name: "Shared with me" }).click();
    await bob.getByRole("heading", { name: "Shared with me" }).waitFor();
    await row(bob, "renamed.txt").waitFor();
    await expectNoA11yProblems(bob, "shared with me");
    const d = bob.waitForEvent("download");
    await bob.getByRole("button", { name: "Download renamed.txt" }).click();
    expect(sha256(await downloaded(await d))).toBe(sha256(original));
    // Bob is not the owner: no sharing controls for him.
    await files(bob).getByRole("button", { name: "Details of renamed.txt" }).click();
    await bob.getByText("Shared with you: only its owner can share it").waitFor();

    // Revoked: gone from Bob's list.
    await shares.getByRole("button", { name: /Remove share/ }).click();
    await panel.getByText("Not shared with anyone.").waitFor();
    await bob.reload();
    await bob.getByRole("heading", { name: "Shared with me" }).waitFor();
    await bob.getByText("Nothing is shared with you yet.").waitFor();
  });

  it("makes a public link with a password that works in a signed-out browser", async () => {
    const panel = alice.getByRole("complementary", { name: "renamed.txt" });
    await panel.getByLabel("Password (optional)").fill("open-sesame");
    await panel.getByLabel("Maximum downloads (optional)").fill("1");
    await panel.getByRole("button", { name: "Create link" }).click();
    const linkField = panel.getByLabel("New public link (shown only now: copy it)");
    await linkField.waitFor();
    const url = await linkField.inputValue();
    expect(url).toMatch(new RegExp(`^${suite.server.base}/l/[A-Za-z0-9_-]+$`));
    await panel.getByRole("list", { name: "Public links" }).getByText(/0 of 1 downloads · password/).waitFor();

    const stranger = await newPage();
    await stranger.goto(url);
    await stranger.getByText("renamed.txt").waitFor();
    await expectNoA11yProblems(stranger, "public link page");
    await stranger.getByLabel("Password").fill("wrong-password");
    await stranger.getByRole("button", { name: "Download" }).click();
    await stranger.getByRole("alert").filter({ hasText: "The password is not right." }).waitFor();
    await stranger.getByLabel("Password").fill("open-sesame");
    const d = stranger.waitForEvent("download");
    await stranger.getByRole("button", { name: "Download" }).click();
    expect(sha256(await downloaded(await d))).toBe(sha256(original));
    // The one download it allowed is used.
    await stranger.reload();
    await stranger.getByRole("alert").filter({ hasText: "This link does not work any more" }).waitFor();

    await panel.getByRole("button", { name: /Revoke the link/ }).click();
    await expect.poll(() => panel.getByRole("list", { name: "Public links" }).count()).toBe(0);
  });

  it("sends an attachment in a conversation that the other member downloads", async () => {
    await alice.getByText("New conversation").click();
    await alice.getByLabel("Usernames").fill("bob");
    await alice.getByRole("button", { name: "Start conversation" }).click();
    await alice.getByRole("list", { name: "Messages" }).waitFor();

    const report = textBytes(3000);
    await alice.getByRole("button", { name: "Attach" }).click();
    const dialog = alice.getByRole("dialog", { name: "Attach a file" });
    await dialog.getByRole("list", { name: "Drive files" }).getByText("dropped.txt").waitFor();
    await expectNoA11yProblems(alice, "attach dialog");
    // A name already in the drive's root: the attachment is saved as "dropped (2).txt".
    await dialog.getByLabel("Upload from this device").setInputFiles({ name: "dropped.txt", mimeType: "text/plain", buffer: report });
    await expect.poll(() => dialog.count()).toBe(0);
    const mine = alice.getByRole("list", { name: "Messages" }).getByRole("list", { name: "Attachments" });
    await mine.getByText("dropped (2).txt").waitFor();

    // And one picked from the drive.
    await alice.getByRole("button", { name: "Attach" }).click();
    await dialog.getByRole("button", { name: "Attach dropped.txt" }).click();
    await expect.poll(() => alice.getByRole("list", { name: "Attachments" }).count()).toBe(2);

    await bob.getByRole("list", { name: "Conversations" }).getByRole("listitem", { name: /Alice Liddell/ }).getByRole("link").click();
    const theirs = bob.getByRole("list", { name: "Messages" });
    await theirs.getByText("dropped (2).txt").waitFor();
    await expect.poll(() => theirs.getByText("2.9 KB").count()).toBe(1);
    await expectNoA11yProblems(bob, "conversation with attachments");
    const d = bob.waitForEvent("download");
    await theirs.getByRole("button", { name: "Download dropped (2).txt" }).click();
    expect(sha256(await downloaded(await d))).toBe(sha256(report));

    // A share to the conversation reaches its other member's "Shared with me".
    await alice.getByRole("link", { name: "Drive", exact: true }).click();
    await files(alice).getByRole("button", { name: "Details of dropped.txt" }).click();
    const panel = alice.getByRole("complementary", { name: "dropped.txt" });
    await panel.getByRole("radio", { name: "A conversation" }).check();
    await panel.getByRole("combobox", { name: "Conversation" }).selectOption({ label: "Bob Builder" });
    await panel.getByRole("combobox", { name: "Permission" }).selectOption("write");
    await panel.getByRole("button", { name: "Share", exact: true }).click();
    await panel.getByRole("list", { name: "Shared with" }).getByText("the conversation Bob Builder").waitFor();
    await bob.getByRole("link", { name: "Drive", exact: true }).click();
    await bob.getByRole("link", { name: "Shared with me" }).click();
    await row(bob, "dropped.txt").waitFor();

    // A shared folder opens with its path from "Shared with me", and takes no uploads from Bob.
    await files(alice).getByRole("button", { name: "Details of Projects" }).click();
    const folder = alice.getByRole("complementary", { name: "Projects" });
    await folder.getByLabel("Username").fill("bob");
    await folder.getByRole("button", { name: "Share", exact: true }).click();
    await folder.getByRole("list", { name: "Shared with" }).getByText("Bob Builder (@bob)").waitFor();
    await bob.reload();
    await files(bob).getByRole("link", { name: "Projects" }).click();
    await bob.getByRole("heading", { name: "Projects" }).waitFor();
    await bob.getByRole("navigation", { name: "Folder path" }).getByRole("link", { name: "Shared with me" }).waitFor();
    await row(bob, "renamed.txt").waitFor();
    expect(await bob.getByRole("button", { name: "Upload", exact: true }).count()).toBe(0);
    await expectNoA11yProblems(bob, "a folder shared with me");
  });

  it("pages a long folder with Load more", async () => {
    const carol = await apiUser(suite.server.base, "carol", "Carol Danvers");
    for (let i = 0; i < 53; i++) {
      const name = `file-${String(i).padStart(2, "0")}.txt`;
      const bytes = Buffer.from(`file number ${i}\n`);
      const t = await apiCall(suite.server.base, carol.token, "POST", "/v1/files/uploads", { name, size: bytes.length, content_type: "text/plain" });
      expect(t.status).toBe(201);
      const put = await fetch(t.body.data.upload_url as string, { method: "PUT", headers: t.body.data.headers as Record<string, string>, body: bytes });
      expect(put.status).toBe(200);
      expect((await apiCall(suite.server.base, carol.token, "POST", `/v1/files/${t.body.data.file_id as string}/complete`)).status).toBe(200);
    }
    const page = await newPage();
    await page.goto("/");
    await submitSignIn(page, "carol");
    await page.getByRole("link", { name: "Drive", exact: true }).click();
    await row(page, "file-00.txt").waitFor();
    await expect.poll(() => files(page).getByRole("row").count()).toBe(51); // header + 50
    await page.getByRole("button", { name: "Load more" }).click();
    await row(page, "file-52.txt").waitFor();
    await expect.poll(() => files(page).getByRole("row").count()).toBe(54);
    await expect.poll(() => page.getByRole("button", { name: "Load more" }).count()).toBe(0);
  });

  it("works at a phone's width, and no page logged a problem", async () => {
    await alice.setViewportSize({ width: 375, height: 740 });
    await alice.getByRole("link", { name: "Drive", exact: true }).click();
    await row(alice, "Projects").waitFor();
    await expectNoA11yProblems(alice, "drive on a phone");
    await alice.emulateMedia({ colorScheme: "dark" });
    await expectNoA11yProblems(alice, "drive on a phone, dark");
    await alice.getByRole("link", { name: "All conversations" }).first().click();
    await alice.getByRole("list", { name: "Conversations" }).waitFor();
    // Chromium logs each refused request; these are the refusals this test provoked on purpose.
    const provoked = [
      /status of 415 .*\/v1\/files\/uploads\)/, // page.html
      /status of 415 .*\/v1\/files\/[0-9a-f-]{36}\/complete\)/, // fake.pdf
      /status of 413 .*\/v1\/files\/uploads\)/, // big.txt
      /status of 507 .*\/v1\/files\/uploads\)/, // half2.txt
      /status of 403 .*\/v1\/links\/[A-Za-z0-9_-]+\/download\)/, // the wrong password
      /status of 404 .*\/v1\/links\/[A-Za-z0-9_-]+\)/, // the used-up link
    ];
    for (const p of provoked) expect(problems.filter((x) => p.test(x)).length, String(p)).toBe(1);
    expect(problems.filter((x) => !provoked.some((p) => p.test(x)))).toEqual([]);
  });
});
