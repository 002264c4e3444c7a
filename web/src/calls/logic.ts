// The pure parts of a call (no WebRTC, no DOM), so they can be unit tested: which frames are
// for this call, who is "polite" in a glare, what the perfect negotiation pattern does with an
// incoming description, the video encoding the mesh's media limits allow, and how WebRTC
// statistics become the quality samples of `POST /v1/calls/{id}/quality`.

import type { Schemas } from "../api/client";

export type Call = Schemas["CallView"];
export type CallSession = Schemas["CallSession"];
export type Participant = Schemas["ParticipantView"];
export type MediaLimits = Schemas["MediaLimits"];
export type QualitySample = Schemas["CallQualityRequest"];

/** What the clients send each other through `call.signal` (an opaque object to the server). */
export type Signal =
  | { kind: "offer"; sdp: string }
  | { kind: "answer"; sdp: string }
  | { kind: "ice"; candidate: RTCIceCandidateInit | null };

export interface RoutedSignal {
  fromSession: string;
  fromUser: string;
  signal: Signal;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

/** Validates a signal received from another client (anything else is dropped). */
export function parseSignal(v: unknown): Signal | null {
  if (!isObject(v)) return null;
  if ((v.kind === "offer" || v.kind === "answer") && typeof v.sdp === "string") return { kind: v.kind, sdp: v.sdp };
  if (v.kind === "ice") {
    if (v.candidate === null || v.candidate === undefined) return { kind: "ice", candidate: null };
    const c = v.candidate;
    if (!isObject(c) || typeof c.candidate !== "string") return null;
    return {
      kind: "ice",
      candidate: {
        candidate: c.candidate,
        sdpMid: typeof c.sdpMid === "string" ? c.sdpMid : null,
        sdpMLineIndex: typeof c.sdpMLineIndex === "number" ? c.sdpMLineIndex : null,
        usernameFragment: typeof c.usernameFragment === "string" ? c.usernameFragment : null,
      },
    };
  }
  return null;
}

/**
 * The `call.signal` event's data, if it is for the call this session is in, from another
 * session, and well formed; null otherwise.
 */
export function routeSignal(data: unknown, callId: string | null, mySession: string): RoutedSignal | null {
  if (!callId || !isObject(data) || data.call_id !== callId) return null;
  const from = data.from_session_id;
  const user = data.from_user_id;
  if (typeof from !== "string" || typeof user !== "string" || from === mySession) return null;
  const signal = parseSignal(data.signal);
  return signal ? { fromSession: from, fromUser: user, signal } : null;
}

/** The polite peer of a pair gives way in a glare; both sides agree on who it is. */
export function isPolite(mySession: string, theirSession: string): boolean {
  return mySession < theirSession;
}

export interface NegotiationState {
  polite: boolean;
  makingOffer: boolean;
  signalingState: RTCSignalingState;
  settingRemoteAnswerPending: boolean;
}

/** Perfect negotiation: whether an incoming description collides, and whether to ignore it. */
export function incomingDescription(
  type: "offer" | "answer",
  s: NegotiationState,
): { collision: boolean; ignore: boolean } {
  const readyForOffer = !s.makingOffer && (s.signalingState === "stable" || s.settingRemoteAnswerPending);
  const collision = type === "offer" && !readyForOffer;
  return { collision, ignore: collision && !s.polite };
}

/** The participations still in the call (a session that left has `left_at`). */
export function activeParticipants(call: Call): Participant[] {
  return call.participants.filter((p) => !p.left_at);
}

/** The other sessions in the call, one entry each (the newest participation of a session). */
export function otherSessions(call: Call, mySession: string): Participant[] {
  const seen = new Map<string, Participant>();
  for (const p of activeParticipants(call)) if (p.session_id !== mySession) seen.set(p.session_id, p);
  return [...seen.values()];
}

export function isLive(call: Call): boolean {
  return call.status === "ringing" || call.status === "active";
}

const STATUS_RANK: Record<string, number> = { ringing: 0, active: 1, ended: 2, missed: 2, declined: 2 };

/**
 * Whether `next` is an older state of the call than `cur`: the socket's `call.updated` events
 * and the HTTP answers travel apart, so an event sent before our join can arrive after its
 * answer. Participations are only ever added, and left only once; the status only moves on.
 */
export function isStale(next: Call, cur: Call): boolean {
  const left = (c: Call) => c.participants.filter((p) => p.left_at).length;
  return (
    next.participants.length < cur.participants.length ||
    left(next) < left(cur) ||
    (STATUS_RANK[next.status] ?? 0) < (STATUS_RANK[cur.status] ?? 0)
  );
}

/** This session is alone in a call that others had joined: the call is over for it. */
export function leftAlone(call: Call, mySession: string, hadOthers: boolean): boolean {
  return hadOthers && otherSessions(call, mySession).length === 0;
}

export interface VideoEncoding {
  maxBitrate: number;
  scaleResolutionDownBy: number;
}

/**
 * The encoding of an outgoing video stream within the mesh's limits: the per-peer bitrate in
 * bit/s, and the scale that brings the track's height down to the suggested largest height.
 */
export function videoEncoding(limits: MediaLimits, trackHeight?: number): VideoEncoding {
  const kbps = Math.max(1, Math.floor(limits.max_video_kbps_per_peer));
  let scale = 1;
  if (trackHeight && limits.max_video_height > 0 && trackHeight > limits.max_video_height) {
    scale = Math.round((trackHeight / limits.max_video_height) * 100) / 100;
  }
  return { maxBitrate: kbps * 1000, scaleResolutionDownBy: scale };
}

/** The counters of one connection's `getStats()` that a quality sample is made from. */
export interface StatsSnapshot {
  at: number;
  bytesSent: number;
  bytesReceived: number;
  packetsLost: number;
  packetsReceived: number;
  /** Seconds, as WebRTC reports it; undefined when not measured yet. */
  rtt?: number;
  jitter?: number;
}

type Stat = Record<string, unknown> & { type: string; id: string };

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Reduces an RTCStatsReport (any iterable of its entries) to a snapshot. */
export function snapshot(stats: Iterable<Stat>, at: number): StatsSnapshot {
  const s: StatsSnapshot = { at, bytesSent: 0, bytesReceived: 0, packetsLost: 0, packetsReceived: 0 };
  const all = [...stats];
  const byId = new Map(all.map((x) => [x.id, x]));
  let pairRtt: number | undefined;
  let remoteRtt: number | undefined;
  for (const x of all) {
    if (x.type === "transport" && typeof x.selectedCandidatePairId === "string") {
      pairRtt ??= num(byId.get(x.selectedCandidatePairId)?.currentRoundTripTime);
    } else if (x.type === "candidate-pair" && x.nominated === true && x.state === "succeeded") {
      pairRtt ??= num(x.currentRoundTripTime);
    } else if (x.type === "remote-inbound-rtp") {
      remoteRtt ??= num(x.roundTripTime);
    } else if (x.type === "inbound-rtp") {
      s.bytesReceived += num(x.bytesReceived) ?? 0;
      s.packetsLost += Math.max(0, num(x.packetsLost) ?? 0);
      s.packetsReceived += num(x.packetsReceived) ?? 0;
      const j = num(x.jitter);
      if (j !== undefined) s.jitter = Math.max(s.jitter ?? 0, j);
    } else if (x.type === "outbound-rtp") {
      s.bytesSent += num(x.bytesSent) ?? 0;
    }
  }
  const rtt = pairRtt ?? remoteRtt;
  if (rtt !== undefined) s.rtt = rtt;
  return s;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * One quality sample between two snapshots of the same connection: round-trip time and jitter
 * in ms, the fraction of packets lost meanwhile, and the bitrate (sent and received) in kbit/s,
 * all within the server's ranges. Null when there is no interval to measure over.
 */
export function qualitySample(prev: StatsSnapshot, cur: StatsSnapshot): QualitySample | null {
  const ms = cur.at - prev.at;
  if (ms <= 0) return null;
  const bytes = Math.max(0, cur.bytesSent - prev.bytesSent) + Math.max(0, cur.bytesReceived - prev.bytesReceived);
  const lost = Math.max(0, cur.packetsLost - prev.packetsLost);
  const received = Math.max(0, cur.packetsReceived - prev.packetsReceived);
  return {
    rtt_ms: round(clamp((cur.rtt ?? 0) * 1000, 0, 60_000), 1),
    jitter_ms: round(clamp((cur.jitter ?? 0) * 1000, 0, 60_000), 1),
    packet_loss: lost + received > 0 ? round(clamp(lost / (lost + received), 0, 1), 4) : 0,
    // bits per millisecond are kbit/s
    bitrate_kbps: round(clamp((bytes * 8) / ms, 0, 1_000_000), 1),
  };
}

/** Several connections' samples (one per peer of the mesh) as the session's one sample. */
export function combineSamples(samples: QualitySample[]): QualitySample | null {
  if (samples.length === 0) return null;
  const mean = (f: (s: QualitySample) => number) => samples.reduce((a, s) => a + f(s), 0) / samples.length;
  return {
    rtt_ms: round(mean((s) => s.rtt_ms), 1),
    jitter_ms: round(Math.max(...samples.map((s) => s.jitter_ms)), 1),
    packet_loss: round(mean((s) => s.packet_loss), 4),
    bitrate_kbps: round(
      samples.reduce((a, s) => a + s.bitrate_kbps, 0),
      1,
    ),
  };
}

/** "1 min 5 s", "42 s", "1 h 2 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  const m = Math.floor((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${m ? ` ${m} min` : ""}`;
}

/** One line of the call history: kind, direction and outcome. */
export function historyLine(call: Call, me: string): string {
  const kind = call.kind === "video" ? "Video call" : "Call";
  const dir = call.created_by === me ? "outgoing" : "incoming";
  let outcome: string;
  if (call.status === "missed") outcome = "missed";
  else if (call.status === "declined") outcome = "declined";
  else if (call.status === "ringing") outcome = "ringing";
  else if (call.status === "active") outcome = "in progress";
  else outcome = call.duration_seconds != null ? formatDuration(call.duration_seconds) : "not answered";
  return `${kind}, ${dir}, ${outcome}`;
}

/** The label of a peer connection's state as the call view shows it. */
export function connectionLabel(state: RTCPeerConnectionState | undefined): string {
  switch (state) {
    case "connected":
      return "Connected";
    case "disconnected":
      return "Reconnecting…";
    case "failed":
      return "Connection failed";
    case "closed":
      return "Disconnected";
    default:
      return "Connecting…";
  }
}
