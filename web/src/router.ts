// Client-side routes. The server answers index.html for any path outside /v1, /health, /ready
// and /metrics, so each of these can be loaded, reloaded and bookmarked directly.

export type Route =
  | { name: "home" }
  | { name: "sign-in" }
  | { name: "register" }
  | { name: "settings" }
  | { name: "admin" }
  | { name: "assistant" }
  | { name: "notifications" }
  | { name: "forgot-password" }
  | { name: "verify-email"; token: string }
  | { name: "reset-password"; token: string }
  | { name: "conversation"; id: string }
  | { name: "drive"; folder: string | null }
  | { name: "drive-shared" }
  | { name: "public-link"; token: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `search` is the query string (`?token=…` on the links of the server's mails). */
export function parseRoute(path: string, search = ""): Route {
  const token = new URLSearchParams(search).get("token") ?? "";
  if (path === "/verify-email") return { name: "verify-email", token };
  if (path === "/reset-password") return { name: "reset-password", token };
  if (path === "/forgot-password") return { name: "forgot-password" };
  if (path === "/sign-in") return { name: "sign-in" };
  if (path === "/register") return { name: "register" };
  if (path === "/settings") return { name: "settings" };
  if (path === "/admin") return { name: "admin" };
  if (path === "/assistant") return { name: "assistant" };
  if (path === "/notifications") return { name: "notifications" };
  const drive = parseDriveRoute(path);
  if (drive) return drive;
  const m = /^\/c\/([^/]+)$/.exec(path);
  if (m && UUID.test(m[1]!)) return { name: "conversation", id: m[1]!.toLowerCase() };
  return { name: "home" };
}

/** The drive's routes: /drive, /drive/<folder id>, /drive/shared, and a public link's /l/<token>. */
function parseDriveRoute(path: string): Route | null {
  if (path === "/drive" || path === "/drive/") return { name: "drive", folder: null };
  if (path === "/drive/shared") return { name: "drive-shared" };
  const f = /^\/drive\/([^/]+)$/.exec(path);
  if (f && UUID.test(f[1]!)) return { name: "drive", folder: f[1]!.toLowerCase() };
  const l = /^\/l\/([A-Za-z0-9_-]{16,128})$/.exec(path);
  if (l) return { name: "public-link", token: l[1]! };
  return null;
}

export function routePath(r: Route): string {
  switch (r.name) {
    case "home":
      return "/";
    case "sign-in":
      return "/sign-in";
    case "register":
      return "/register";
    case "settings":
      return "/settings";
    case "admin":
      return "/admin";
    case "assistant":
      return "/assistant";
    case "notifications":
      return "/notifications";
    case "forgot-password":
      return "/forgot-password";
    // The token stays out of the address bar and the history once the page has it.
    case "verify-email":
      return "/verify-email";
    case "reset-password":
      return "/reset-password";
    case "conversation":
      return `/c/${r.id}`;
    case "drive":
      return r.folder ? `/drive/${r.folder}` : "/drive";
    case "drive-shared":
      return "/drive/shared";
    case "public-link":
      return `/l/${r.token}`;
  }
}

const listeners = new Set<(r: Route) => void>();

export function currentRoute(): Route {
  return parseRoute(location.pathname, location.search);
}

export function navigate(r: Route, replace = false): void {
  const path = routePath(r);
  if (path !== location.pathname || location.search) {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
  }
  for (const cb of listeners) cb(r);
}

export function onRoute(cb: (r: Route) => void): () => void {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

addEventListener("popstate", () => {
  const r = currentRoute();
  for (const cb of listeners) cb(r);
});
