// Two-factor authentication in Settings: set up (QR code or the secret typed by hand), confirm
// with a code, show the recovery codes once; or turn it off with the password and a code.

import { useState } from "preact/hooks";
import { type User, api, http } from "../api/client";
import { updateUser } from "../session";
import { QrCode } from "./QrCode";
import { apiErrorText } from "../errors";

async function reloadUser() {
  updateUser(await api((headers) => http.GET("/v1/users/me", { headers })));
}

export function TwoFactor({ user }: { user: User }) {
  const [setup, setSetup] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [code, setCode] = useState("");
  const [password, setPassword] = useState("");
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function start() {
    setError(null);
    try {
      setSetup(await api((headers) => http.POST("/v1/auth/2fa/setup", { headers })));
    } catch (e) {
      setError(apiErrorText(e, "Two-factor authentication could not be set up."));
    }
  }

  async function enable(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      const r = await api((headers) => http.POST("/v1/auth/2fa/enable", { headers, body: { code: code.trim() } }));
      setRecovery(r.recovery_codes);
      setSetup(null);
      setCode("");
      await reloadUser();
    } catch (err) {
      setError(apiErrorText(err, "The code could not be checked."));
    }
  }

  async function disable(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      await api((headers) => http.POST("/v1/auth/2fa/disable", { headers, body: { password, code: code.trim() } }));
      setPassword("");
      setCode("");
      setRecovery(null);
      await reloadUser();
    } catch (err) {
      setError(apiErrorText(err, "Two-factor authentication could not be turned off."));
    }
  }

  const problem = error && (
    <p class="error" role="alert">
      {error}
    </p>
  );

  return (
    <section aria-labelledby="twofactor-heading">
      <h2 id="twofactor-heading">Two-factor authentication</h2>
      {recovery && (
        <div class="recovery">
          <p role="status">
            Two-factor authentication is on. Keep these recovery codes somewhere safe: each signs in
            once without your authenticator, and they are not shown again.
          </p>
          <ul aria-label="Recovery codes">
            {recovery.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ul>
        </div>
      )}
      {user.totp_enabled ? (
        <form class="stack" onSubmit={disable}>
          <p>On: signing in asks for a code from your authenticator app.</p>
          <label>
            Password
            <input type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          <label>
            Code
            <input autocomplete="one-time-code" inputMode="numeric" required value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          </label>
          {problem}
          <button type="submit" class="secondary">
            Turn off two-factor authentication
          </button>
        </form>
      ) : setup ? (
        <form class="stack" onSubmit={enable}>
          <p>Scan this code with an authenticator app, or type the key into it, then enter the code it shows.</p>
          <QrCode text={setup.otpauth_uri} label="QR code of the two-factor key" />
          <p>
            Key: <code class="secret">{setup.secret}</code>
          </p>
          <label>
            Code
            <input autocomplete="one-time-code" inputMode="numeric" required value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          </label>
          {problem}
          <button type="submit">Turn on two-factor authentication</button>
        </form>
      ) : (
        <div class="stack">
          <p>Off. A second factor keeps your account safe even if your password leaks.</p>
          {problem}
          <button type="button" onClick={() => void start()}>
            Set up two-factor authentication
          </button>
        </div>
      )}
    </section>
  );
}
