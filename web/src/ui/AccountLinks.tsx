// The pages the server's mails link to (`/verify-email?token=…`, `/reset-password?token=…`) and
// the request for a reset. The token is taken from the address once and then removed from it
// (and from the history), so it is not left in the address bar or shared by a copied link.

import { useEffect, useState } from "preact/hooks";
import { ApiFailure, failure, http } from "../api/client";
import { navigate } from "../router";
import { forget } from "../session";
import { ErrorLine } from "./Note";

function home(e: Event) {
  e.preventDefault();
  navigate({ name: "home" });
}

export function VerifyEmail({ token }: { token: string }) {
  const [state, setState] = useState<"working" | "done" | string>("working");
  useEffect(() => {
    navigate({ name: "verify-email", token }, true);
    if (!token) {
      setState("This link has no token. Open the link of the mail as it is.");
      return;
    }
    http.POST("/v1/auth/email/verify", { body: { token } }).then(
      (r) => setState(r.data ? "done" : failure(r.response.status, r.error).message),
      () => setState("The server cannot be reached. Try the link again."),
    );
  }, []);
  return (
    <main class="auth">
      <h1>Verify your email address</h1>
      {state === "working" ? (
        <p role="status">Verifying…</p>
      ) : state === "done" ? (
        <p role="status">Your email address is verified.</p>
      ) : (
        <p class="error" role="alert">
          {state} The link may have been used already or have expired; you can send a new one from
          Settings.
        </p>
      )}
      <p>
        <a href="/" onClick={home}>
          Go to SecureConnect
        </a>
      </p>
    </main>
  );
}

export function ResetPassword({ token }: { token: string }) {
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => navigate({ name: "reset-password", token }, true), []);

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    const r = await http
      .POST("/v1/auth/password-reset/confirm", { body: { token, new_password: password } })
      .catch(() => null);
    if (r?.data) {
      // Every session of the account ended, this browser's too.
      forget();
      setDone(true);
    } else {
      setError(r ? failure(r.response.status, r.error).message : "The server cannot be reached.");
    }
  }

  return (
    <main class="auth">
      <h1>Choose a new password</h1>
      {done ? (
        <>
          <p role="status">Your password is changed and every session was signed out.</p>
          <p>
            <a href="/" onClick={home}>
              Sign in
            </a>
          </p>
        </>
      ) : (
        <form onSubmit={submit}>
          <label>
            New password
            <input
              type="password"
              autocomplete="new-password"
              required
              minLength={12}
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
            <small>At least 12 characters; a passphrase of a few words works well.</small>
          </label>
          <ErrorLine text={error} />
          <button type="submit" disabled={!token}>
            Set new password
          </button>
          {!token && <p class="error">This link has no token. Open the link of the mail as it is.</p>}
        </form>
      )}
    </main>
  );
}

export function ForgotPassword() {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      const r = await http.POST("/v1/auth/password-reset/request", { body: { email: email.trim() } });
      if (r.error) throw failure(r.response.status, r.error);
      setSent(true);
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : "The server cannot be reached.");
    }
  }

  return (
    <main class="auth">
      <h1>Reset your password</h1>
      {sent ? (
        <p role="status">If an account has this address, a mail with a link is on its way. The link works for an hour.</p>
      ) : (
        <form onSubmit={submit}>
          <label>
            Email
            <input type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          </label>
          <ErrorLine text={error} />
          <button type="submit">Send reset link</button>
        </form>
      )}
      <p>
        <a href="/" onClick={home}>
          Back to sign in
        </a>
      </p>
    </main>
  );
}
