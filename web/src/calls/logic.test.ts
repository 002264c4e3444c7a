import { describe, expect, it } from "vitest";
import {
  type Call,
  combineSamples,
  formatDuration,
  historyLine,
  incomingDescription,
  isPolite,
  isStale,
  leftAlone,
  otherSessions,
  parseSignal,
  qualitySample,
  routeSignal,
  snapshot,
  videoEncoding,
} from "./logic";
import { recordingName, recordingType } from "./recording";

function call(participants: Partial<Call["participants"][number]>[], extra: Partial<Call> = {}): Call {
  return {
    id: "c1",
    conversation_id: "conv",
    created_at: "2026-12-04T18:00:00.000Z",
    created_by: "ua",
    declined_by: [],
    kind: "video",
    max_participants: 8,
    participants: participants.map((p) => ({
      audio: true,
      video: true,
      screen: false,
      joined_at: "2026-12-04T18:00:00.000Z",
      left_at: null,
      session_id: "s?",
      user_id: "u?",
      ...p,
    })),
    recordings: [],
    status: "active",
    ...extra,
  };
}

describe("signal routing", () => {
  const frame = { call_id: "c1", from_user_id: "ub", from_session_id: "sb", signal: { kind: "offer", sdp: "v=0" } };

  it("passes a well-formed signal of the current call from another session", () => {
    expect(routeSignal(frame, "c1", "sa")).toEqual({ fromSession: "sb", fromUser: "ub", signal: { kind: "offer", sdp: "v=0" } });
  });

  it("drops signals of another call, of no call, from this session, or malformed", () => {
    expect(routeSignal(frame, "c2", "sa")).toBeNull();
    expect(routeSignal(frame, null, "sa")).toBeNull();
    expect(routeSignal(frame, "c1", "sb")).toBeNull();
    expect(routeSignal({ ...frame, signal: { kind: "offer" } }, "c1", "sa")).toBeNull();
    expect(routeSignal({ ...frame, signal: { kind: "hello", sdp: "x" } }, "c1", "sa")).toBeNull();
    expect(routeSignal("nonsense", "c1", "sa")).toBeNull();
  });

  it("keeps only the candidate fields WebRTC knows, and the end of candidates", () => {
    expect(parseSignal({ kind: "ice", candidate: { candidate: "candidate:1", sdpMid: "0", sdpMLineIndex: 0, evil: 1 } })).toEqual({
      kind: "ice",
      candidate: { candidate: "candidate:1", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: null },
    });
    expect(parseSignal({ kind: "ice", candidate: null })).toEqual({ kind: "ice", candidate: null });
    expect(parseSignal({ kind: "ice", candidate: { candidate: 3 } })).toBeNull();
  });
});

describe("perfect negotiation", () => {
  it("has exactly one polite side per pair", () => {
    expect(isPolite("a", "b")).toBe(true);
    expect(isPolite("b", "a")).toBe(false);
  });

  const stable = { makingOffer: false, signalingState: "stable" as const, settingRemoteAnswerPending: false };

  it("accepts an offer when stable, on either side", () => {
    expect(incomingDescription("offer", { ...stable, polite: false })).toEqual({ collision: false, ignore: false });
    expect(incomingDescription("offer", { ...stable, polite: true })).toEqual({ collision: false, ignore: false });
  });

  it("in a glare, the impolite side ignores the offer and the polite side takes it", () => {
    const glare = { ...stable, makingOffer: true };
    expect(incomingDescription("offer", { ...glare, polite: false })).toEqual({ collision: true, ignore: true });
    expect(incomingDescription("offer", { ...glare, polite: true })).toEqual({ collision: true, ignore: false });
    const sent = { ...stable, signalingState: "have-local-offer" as const };
    expect(incomingDescription("offer", { ...sent, polite: false }).ignore).toBe(true);
    expect(incomingDescription("offer", { ...sent, polite: true }).ignore).toBe(false);
  });

  it("never ignores an answer, and takes an offer while an answer is being applied", () => {
    expect(incomingDescription("answer", { ...stable, signalingState: "have-local-offer", polite: false }).ignore).toBe(false);
    expect(
      incomingDescription("offer", { makingOffer: false, signalingState: "have-local-offer", settingRemoteAnswerPending: true, polite: false }),
    ).toEqual({ collision: false, ignore: false });
  });
});

describe("participants", () => {
  it("lists the other live sessions once (a rejoin appears again in the call)", () => {
    const c = call([
      { session_id: "sa", user_id: "ua" },
      { session_id: "sb", user_id: "ub", left_at: "2026-12-04T18:01:00.000Z" },
      { session_id: "sb", user_id: "ub" },
      { session_id: "sc", user_id: "uc", left_at: "2026-12-04T18:01:00.000Z" },
    ]);
    expect(otherSessions(c, "sa").map((p) => p.session_id)).toEqual(["sb"]);
  });

  it("is left alone only after others had been there", () => {
    const alone = call([{ session_id: "sa" }, { session_id: "sb", left_at: "2026-12-04T18:01:00.000Z" }]);
    expect(leftAlone(alone, "sa", true)).toBe(true);
    expect(leftAlone(alone, "sa", false)).toBe(false);
    expect(leftAlone(call([{ session_id: "sa" }, { session_id: "sb" }]), "sa", true)).toBe(false);
  });
});

describe("stale call states", () => {
  const left = "2026-12-04T18:01:00.000Z";
  const two = call([{ session_id: "sa" }, { session_id: "sb" }]);

  it("knows an event from before our join, or before a leave, or before the status moved on", () => {
    const before = call([{ session_id: "sa" }]);
    expect(isStale(before, two)).toBe(true);
    const afterLeave = call([{ session_id: "sa" }, { session_id: "sb", left_at: left }]);
    expect(isStale(two, afterLeave)).toBe(true);
    expect(isStale(call([{ session_id: "sa" }, { session_id: "sb" }], { status: "ringing" }), two)).toBe(true);
  });

  it("takes newer or equal states (a media flag change keeps the counts)", () => {
    expect(isStale(call([{ session_id: "sa", audio: false }, { session_id: "sb" }]), two)).toBe(false);
    expect(isStale(call([{ session_id: "sa" }, { session_id: "sb" }, { session_id: "sc" }]), two)).toBe(false);
    expect(isStale(call([{ session_id: "sa" }, { session_id: "sb" }], { status: "ended" }), two)).toBe(false);
  });
});

describe("encoding limits", () => {
  const limits = { max_video_height: 360, max_video_kbps_per_peer: 833, uplink_budget_kbps: 2500 };

  it("caps the bitrate at the per-peer share, in bit/s", () => {
    expect(videoEncoding(limits).maxBitrate).toBe(833_000);
  });

  it("scales a taller track down to the suggested height, never up", () => {
    expect(videoEncoding(limits, 720).scaleResolutionDownBy).toBe(2);
    expect(videoEncoding(limits, 1080).scaleResolutionDownBy).toBe(3);
    expect(videoEncoding(limits, 480).scaleResolutionDownBy).toBe(1.33);
    expect(videoEncoding(limits, 240).scaleResolutionDownBy).toBe(1);
    expect(videoEncoding(limits, undefined).scaleResolutionDownBy).toBe(1);
  });

  it("never asks for a zero bitrate", () => {
    expect(videoEncoding({ ...limits, max_video_kbps_per_peer: 0 }).maxBitrate).toBe(1000);
  });
});

describe("quality samples", () => {
  const report = (bytesSent: number, bytesReceived: number, lost: number, received: number) => [
    { type: "transport", id: "T", selectedCandidatePairId: "P" },
    { type: "candidate-pair", id: "P", currentRoundTripTime: 0.042, nominated: true, state: "succeeded" },
    { type: "candidate-pair", id: "Q", currentRoundTripTime: 0.5 },
    { type: "inbound-rtp", id: "I1", kind: "audio", bytesReceived: bytesReceived / 2, packetsLost: lost, packetsReceived: received, jitter: 0.004 },
    { type: "inbound-rtp", id: "I2", kind: "video", bytesReceived: bytesReceived / 2, packetsLost: 0, packetsReceived: 0, jitter: 0.012 },
    { type: "outbound-rtp", id: "O1", bytesSent },
    { type: "remote-inbound-rtp", id: "R", roundTripTime: 0.9 },
  ];

  it("reads the selected pair's rtt, the worst jitter and the counters", () => {
    expect(snapshot(report(1000, 2000, 3, 97), 5)).toEqual({
      at: 5,
      bytesSent: 1000,
      bytesReceived: 2000,
      packetsLost: 3,
      packetsReceived: 97,
      rtt: 0.042,
      jitter: 0.012,
    });
  });

  it("falls back to the remote report's rtt", () => {
    expect(snapshot([{ type: "remote-inbound-rtp", id: "R", roundTripTime: 0.1 }], 0).rtt).toBe(0.1);
  });

  it("turns two snapshots into ms, a loss fraction and kbit/s", () => {
    const a = snapshot(report(0, 0, 0, 0), 0);
    const b = snapshot(report(125_000, 125_000, 10, 990), 10_000);
    // 250,000 bytes = 2,000,000 bits over 10 s = 200 kbit/s
    expect(qualitySample(a, b)).toEqual({ rtt_ms: 42, jitter_ms: 12, packet_loss: 0.01, bitrate_kbps: 200 });
  });

  it("stays within the server's ranges, and needs an interval", () => {
    const a = { at: 0, bytesSent: 0, bytesReceived: 0, packetsLost: 0, packetsReceived: 0 };
    const b = { ...a, at: 1, bytesSent: 1e12, rtt: 120, jitter: -1 };
    expect(qualitySample(a, b)).toEqual({ rtt_ms: 60_000, jitter_ms: 0, packet_loss: 0, bitrate_kbps: 1_000_000 });
    expect(qualitySample(a, a)).toBeNull();
  });

  it("combines peers: mean rtt and loss, worst jitter, total bitrate", () => {
    expect(
      combineSamples([
        { rtt_ms: 10, jitter_ms: 1, packet_loss: 0, bitrate_kbps: 100 },
        { rtt_ms: 30, jitter_ms: 5, packet_loss: 0.1, bitrate_kbps: 300 },
      ]),
    ).toEqual({ rtt_ms: 20, jitter_ms: 5, packet_loss: 0.05, bitrate_kbps: 400 });
    expect(combineSamples([])).toBeNull();
  });
});

describe("history and recordings", () => {
  it("says kind, direction and outcome", () => {
    expect(historyLine(call([], { status: "ended", duration_seconds: 65 }), "ua")).toBe("Video call, outgoing, 1 min 5 s");
    expect(historyLine(call([], { kind: "audio", status: "missed" }), "ub")).toBe("Call, incoming, missed");
    expect(historyLine(call([], { status: "ended", duration_seconds: null }), "ub")).toBe("Video call, incoming, not answered");
  });

  it("formats durations", () => {
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(120)).toBe("2 min");
    expect(formatDuration(3720)).toBe("1 h 2 min");
  });

  it("records in a type the browser supports, named as the drive accepts", () => {
    expect(recordingType(true, (t) => t === "video/webm")).toBe("video/webm");
    expect(recordingType(false, () => true)).toBe("audio/webm;codecs=opus");
    expect(recordingType(true, () => false)).toBeNull();
    expect(recordingName(new Date("2026-12-04T18:05:09.123Z"), "video/webm")).toBe("call-recording-20261204-180509.webm");
    expect(recordingName(new Date("2026-12-04T18:05:09.123Z"), "audio/webm")).toBe("call-recording-20261204-180509.weba");
  });
});
