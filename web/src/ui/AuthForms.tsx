// Sign in (with the second factor when the account asks for it) and create account.

import { useState } from "preact/hooks";
import { ApiFailure } from "../api/client";
import { navigate } from "../router";
import { register, signIn } from "../session";
import { ErrorLine } from "./Note";

function message(e: unknown): string {
  if (e instanceof ApiFailure) {
    if (e.code === "ACCOUNT_LOCKED") {
      const s = Number(e.details?.["retry_after_seconds"] ?? 0);
      return `Too many failed attempts. Try again in ${Math.ceil(s / 60)} minutes.`;
    }
    if (e.code === "UNAUTHORIZED") return "Wrong email, username or password.";
    return e.message;
  }
  return "Something went wrong.";
}

export function SignIn() {
  const [identifier, setIdentifier] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [needCode, setNeedCode] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn({ identifier, password, code: needCode ? code.trim() : undefined });
      navigate({ name: "home" }, true);
    } catch (err) {
      if (err instanceof ApiFailure && err.code === "TOTP_REQUIRED") {
        if (needCode) setError("That code is not valid. Try again, or use a recovery code.");
        setNeedCode(true);
      } else {
        setError(message(err));
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="auth">
      <h1>Sign in to SecureConnect</h1>
      <form onSubmit={submit}>
        <label>
          Email or username
          <input
            name="identifier"
            autocomplete="username"
            required
            value={identifier}
            onInput={(e) => setIdentifier(e.currentTarget.value)}
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {needCode && (
          <label>
            Code
            <input
              name="code"
              autocomplete="one-time-code"
              required
              autoFocus
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
            />
            <small>The 6-digit code of your authenticator app, or a recovery code.</small>
          </label>
        )}
        <ErrorLine text={error} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <p>
        <a
          href="/forgot-password"
          onClick={(e) => {
            e.preventDefault();
            navigate({ name: "forgot-password" });
          }}
        >
          Forgot your password?
        </a>
      </p>
      <p>
        New here?{" "}
        <a
          href="/register"
          onClick={(e) => {
            e.preventDefault();
            navigate({ name: "register" });
          }}
        >
          Create account
        </a>
      </p>
    </main>
  );
}

export function Register() {
  const [form, setForm] = useState({ email: "", username: "", display_name: "", password: "" });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = (name: keyof typeof form) => ({
    name,
    value: form[name],
    onInput: (e: { currentTarget: HTMLInputElement }) => setForm({ ...form, [name]: e.currentTarget.value }),
  });

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await register(form);
      navigate({ name: "home" }, true);
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : "Something went wrong.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="auth">
      <h1>Create account</h1>
      <form onSubmit={submit}>
        <label>
          Email
          <input type="email" autocomplete="email" required {...field("email")} />
        </label>
        <label>
          Username
          <input autocomplete="username" required minLength={3} maxLength={32} {...field("username")} />
          <small>3–32 characters: a–z, 0–9, “_” and “.”.</small>
        </label>
        <label>
          Display name
          <input autocomplete="name" required maxLength={64} {...field("display_name")} />
        </label>
        <label>
          Password
          <input type="password" autocomplete="new-password" required minLength={12} {...field("password")} />
          <small>At least 12 characters; a passphrase of a few words works well.</small>
        </label>
        <ErrorLine text={error} />
        <button type="submit" disabled={busy}>
          Create account
        </button>
      </form>
      <p>
        Already have an account?{" "}
        <a
          href="/sign-in"
          onClick={(e) => {
            e.preventDefault();
            navigate({ name: "sign-in" });
          }}
        >
          Sign in
        </a>
      </p>
    </main>
  );
}
