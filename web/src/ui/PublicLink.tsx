// The page of a public link (/l/<token>), signed in or not: the file's name and size, the
// password when the link has one, and a download through a short-lived signed URL.

import { useEffect, useState } from "preact/hooks";
import { ApiFailure, type Schemas, api, http } from "../api/client";
import { formatSize } from "../size";
import { saveFrom } from "../driveApi";
import { ErrorLine } from "./Note";
import "./drive.css";

export function PublicLink({ token }: { token: string }) {
  const [info, setInfo] = useState<Schemas["PublicLinkView"] | null>(null);
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api(() => http.GET("/v1/links/{token}", { params: { path: { token } } })).then(setInfo, (e: unknown) =>
      setError(
        e instanceof ApiFailure && e.status === 404
          ? "This link does not work any more: it expired, reached its download limit, or was revoked."
          : e instanceof ApiFailure
            ? e.message
            : "The server cannot be reached.",
      ),
    );
  }, [token]);

  async function download(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const link = await api(() =>
        http.POST("/v1/links/{token}/download", { params: { path: { token } }, body: { password: password || null } }),
      );
      saveFrom(link.download_url);
    } catch (err) {
      setError(
        err instanceof ApiFailure && err.status === 403
          ? "The password is not right."
          : err instanceof ApiFailure && err.status === 404
            ? "This link does not work any more: it expired, reached its download limit, or was revoked."
            : err instanceof ApiFailure
              ? err.message
              : "The server cannot be reached.",
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="auth public-link">
      <h1>Shared file</h1>
      {info && (
        <form class="stack" onSubmit={download}>
          <p>
            <strong class="file-name">{info.name}</strong> <span class="meta">{formatSize(info.size)}</span>
          </p>
          {info.expires_at && (
            <p class="meta">
              Available until <time dateTime={info.expires_at}>{new Date(info.expires_at).toLocaleString()}</time>
            </p>
          )}
          {info.password_required && (
            <label>
              Password
              <input type="password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
            </label>
          )}
          <button type="submit" disabled={busy}>
            Download
          </button>
        </form>
      )}
      <ErrorLine text={error} />
      {!info && !error && (
        <p class="loading" role="status">
          Loading…
        </p>
      )}
    </main>
  );
}
