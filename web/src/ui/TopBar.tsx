// The top bar: the brand and the connection's state, the main navigation (a "Main" landmark)
// and the account's actions. Every control keeps its words as its accessible name; where the
// screen is narrow only the icons show and the words stay in the page, visually hidden.

import type { ComponentChildren } from "preact";
import type { ConnectionState } from "../realtime";
import { type Route, navigate } from "../router";
import { type Session, signOut } from "../session";
import { useAiSettings } from "./AiControls";
import { NotificationBell } from "./Notifications";
import type { EventListener } from "./Chat";
import { BellIcon, ChatIcon, DriveIcon, GearIcon, LogoIcon, ShieldIcon, SignOutIcon, SparkleIcon } from "./icons";
import "./topbar.css";

const CONNECTION: Record<ConnectionState, string> = {
  online: "Online",
  connecting: "Connecting…",
  offline: "Offline, reconnecting…",
};

function NavLink({
  href,
  to,
  current,
  icon,
  children,
}: {
  href: string;
  to: Route;
  current: "page" | "true" | undefined;
  icon: ComponentChildren;
  children: string;
}) {
  return (
    <a
      href={href}
      class="navlink"
      title={children}
      aria-current={current}
      onClick={(e) => {
        e.preventDefault();
        navigate(to);
      }}
    >
      {icon}
      <span class="nav-label">{children}</span>
    </a>
  );
}

export function TopBar({
  session,
  route,
  connection,
  openId,
  subscribe,
  resyncs,
  nameOf,
  onError,
}: {
  session: Session;
  route: Route;
  connection: ConnectionState;
  openId: string | null;
  subscribe: (l: EventListener) => () => void;
  resyncs: number;
  nameOf: (id: string) => string | undefined;
  onError: (message: string) => void;
}) {
  const { settings } = useAiSettings();
  const assistant = !!settings && (settings.chat || settings.images);
  const admin = session.user.role === "admin";
  const at = (name: Route["name"]) => (route.name === name ? "page" : undefined);
  return (
    <header class="topbar">
      <span class="brand">
        <LogoIcon />
        <span class="brand-name">SecureConnect</span>
      </span>
      <span class={`connection ${connection}`} role="status" title={CONNECTION[connection]}>
        <span class="dot" aria-hidden="true" />
        <span class="connection-text">{CONNECTION[connection]}</span>
      </span>
      <nav class="mainnav" aria-label="Main">
        <ul>
          <li>
            <NavLink
              href="/"
              to={{ name: "home" }}
              current={route.name === "home" ? "page" : route.name === "conversation" ? "true" : undefined}
              icon={<ChatIcon />}
            >
              Conversations
            </NavLink>
          </li>
          <li>
            <NavLink
              href="/drive"
              to={{ name: "drive", folder: null }}
              current={route.name === "drive" || route.name === "drive-shared" ? "page" : undefined}
              icon={<DriveIcon />}
            >
              Drive
            </NavLink>
          </li>
          <li>
            <NotificationBell
              current={route.name === "notifications"}
              openId={openId}
              subscribe={subscribe}
              resyncs={resyncs}
              nameOf={nameOf}
              icon={<BellIcon />}
            />
          </li>
          {assistant && (
            <li>
              <NavLink href="/assistant" to={{ name: "assistant" }} current={at("assistant")} icon={<SparkleIcon />}>
                Assistant
              </NavLink>
            </li>
          )}
          {admin && (
            <li>
              <NavLink href="/admin" to={{ name: "admin" }} current={at("admin")} icon={<ShieldIcon />}>
                Admin
              </NavLink>
            </li>
          )}
        </ul>
      </nav>
      <div class="account" role="group" aria-label="Account">
        <span class="me">{session.user.display_name}</span>
        <NavLink href="/settings" to={{ name: "settings" }} current={at("settings")} icon={<GearIcon />}>
          Settings
        </NavLink>
        <button
          type="button"
          class="navlink signout"
          title="Sign out"
          onClick={() => void signOut().catch(() => onError("Sign out failed: the server cannot be reached."))}
        >
          <SignOutIcon />
          <span class="nav-label">Sign out</span>
        </button>
      </div>
    </header>
  );
}
