// The one WebSocket of the app (API.md §5): a single-use ticket from POST /v1/realtime/ticket,
// then /v1/realtime?ticket=… on this origin. It reconnects by itself with a growing, jittered
// delay, and tells its listeners when it is (re)connected so they catch up with `after_seq`
// on what the socket missed while it was down.

import { api, http } from "./api/client";

export interface RealtimeEvent {
  type: string;
  data: unknown;
}

export type ConnectionState = "connecting" | "online" | "offline";

export interface RealtimeHandlers {
  event(e: RealtimeEvent): void;
  /** The socket is ready (first `ready` frame): anything sent meanwhile must be fetched. */
  resync(): void;
  state(s: ConnectionState): void;
  /** The server ended this session (close 4001) or banned the account (4003). */
  sessionEnded(): void;
}

/** Close codes after which reconnecting is pointless. */
const SESSION_ENDED = new Set([4001, 4003]);
const PING_MS = 25_000;

/** Delay before reconnect attempt `n` (0-based): 0.5 s doubling to 15 s, ±25 % jitter. */
export function reconnectDelay(n: number, random: () => number = Math.random): number {
  const base = Math.min(15_000, 500 * 2 ** Math.min(n, 10));
  return Math.round(base * (0.75 + random() * 0.5));
}

export function socketUrl(origin: string, ticket: string): string {
  const url = new URL("/v1/realtime", origin);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("ticket", ticket);
  return url.href;
}

export class Realtime {
  private socket: WebSocket | null = null;
  private attempts = 0;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ping: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly on: RealtimeHandlers) {}

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ping);
    this.socket?.close(1000);
    this.socket = null;
  }

  /** Sends a client frame (`typing`, `read`, …) if the socket is open; else drops it. */
  send(type: string, data: unknown): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type, data }));
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.on.state("connecting");
    let ticket: string;
    try {
      ticket = (await api((headers) => http.POST("/v1/realtime/ticket", { headers }))).ticket;
    } catch {
      this.retry();
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(socketUrl(location.origin, ticket));
    this.socket = ws;
    ws.onmessage = (m) => {
      let frame: RealtimeEvent;
      try {
        frame = JSON.parse(String(m.data)) as RealtimeEvent;
      } catch {
        return;
      }
      if (frame.type === "ready") {
        this.attempts = 0;
        this.on.state("online");
        this.on.resync();
      } else if (frame.type !== "pong") {
        this.on.event(frame);
      }
    };
    ws.onopen = () => {
      clearInterval(this.ping);
      this.ping = setInterval(() => this.send("ping", {}), PING_MS);
    };
    ws.onclose = (c) => {
      clearInterval(this.ping);
      if (this.socket !== ws) return;
      this.socket = null;
      if (this.stopped) return;
      if (SESSION_ENDED.has(c.code)) {
        this.on.state("offline");
        this.on.sessionEnded();
        return;
      }
      this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    this.on.state("offline");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), reconnectDelay(this.attempts++));
  }
}
