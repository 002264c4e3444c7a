import { useEffect, useState } from "preact/hooks";
import { type Route, currentRoute, navigate, onRoute } from "../router";
import { type Session, onSessionChange, restore } from "../session";
import { ForgotPassword, ResetPassword, VerifyEmail } from "./AccountLinks";
import { Register, SignIn } from "./AuthForms";
import { Chat } from "./Chat";
import { PublicLink } from "./PublicLink";

export function App() {
  // undefined while the page asks the server whether the refresh cookie is still good.
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [route, setRoute] = useState<Route>(currentRoute());

  useEffect(() => onRoute(setRoute), []);
  // The server could not be asked whether the session lives: say so, rather than show a sign-in
  // form to someone who is signed in.
  const [unreachable, setUnreachable] = useState(false);
  function tryRestore() {
    setUnreachable(false);
    restore().then(setSession, () => setUnreachable(true));
  }
  useEffect(() => {
    const off = onSessionChange(setSession);
    tryRestore();
    return off;
  }, []);

  useEffect(() => {
    const signedOutOnly = route.name === "sign-in" || route.name === "register" || route.name === "forgot-password";
    if (session && signedOutOnly) navigate({ name: "home" }, true);
  }, [session, route]);

  // The mails' links work signed in or not.
  if (route.name === "verify-email") return <VerifyEmail token={route.token} />;
  if (route.name === "reset-password") return <ResetPassword token={route.token} />;
  if (route.name === "public-link") return <PublicLink token={route.token} />;
  if (route.name === "forgot-password" && !session) return <ForgotPassword />;
  if (session === undefined && unreachable) {
    return (
      <main class="auth">
        <h1>SecureConnect</h1>
        <p role="alert">The server cannot be reached. Check your connection, then try again.</p>
        <button type="button" onClick={tryRestore}>
          Try again
        </button>
      </main>
    );
  }
  if (session === undefined) {
    return (
      <p class="loading" role="status">
        Loading…
      </p>
    );
  }
  if (!session) return route.name === "register" ? <Register /> : <SignIn />;
  return <Chat session={session} route={route} />;
}
