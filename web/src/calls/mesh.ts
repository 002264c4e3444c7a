// The WebRTC mesh of one call: one RTCPeerConnection per other participant session, negotiated
// with the perfect negotiation pattern (either side may offer at any time; in a glare the
// polite side rolls back), signalled through the realtime socket's `call.signal` frames.

import {
  type MediaLimits,
  type QualitySample,
  type Signal,
  type StatsSnapshot,
  combineSamples,
  incomingDescription,
  isPolite,
  qualitySample,
  snapshot,
  videoEncoding,
} from "./logic";

export interface Peer {
  session: string;
  user: string;
  pc: RTCPeerConnection;
  remote: MediaStream;
  polite: boolean;
  makingOffer: boolean;
  ignoreOffer: boolean;
  settingRemoteAnswerPending: boolean;
  audioSender: RTCRtpSender | null;
  videoSender: RTCRtpSender | null;
  /** Signals are handled one after another. */
  queue: Promise<void>;
  lastStats: StatsSnapshot | null;
}

export interface MeshOptions {
  me: string;
  iceServers: RTCIceServer[];
  limits: MediaLimits | null;
  send(toSession: string, signal: Signal): void;
  /** Something a view shows changed (a track, a connection state). */
  changed(): void;
  /** A negotiation step failed in a way worth telling (not a glare that was handled). */
  failed(message: string): void;
}

export class Mesh {
  readonly peers = new Map<string, Peer>();
  /** The outgoing stream: the microphone, and the camera or the shared screen. */
  readonly out = new MediaStream();
  private audio: MediaStreamTrack | null = null;
  private video: MediaStreamTrack | null = null;
  private closed = false;

  constructor(private readonly o: MeshOptions) {}

  get audioTrack(): MediaStreamTrack | null {
    return this.audio;
  }

  get videoTrack(): MediaStreamTrack | null {
    return this.video;
  }

  /** Sets the outgoing audio track (a new microphone), on every connection. */
  setAudio(track: MediaStreamTrack | null): void {
    this.swap("audio", track);
  }

  /** Sets the outgoing video track (camera, screen, or none), on every connection. */
  setVideo(track: MediaStreamTrack | null): void {
    this.swap("video", track);
  }

  private swap(kind: "audio" | "video", track: MediaStreamTrack | null): void {
    const old = kind === "audio" ? this.audio : this.video;
    if (old === track) return;
    if (old) this.out.removeTrack(old);
    if (track) this.out.addTrack(track);
    if (kind === "audio") this.audio = track;
    else this.video = track;
    for (const p of this.peers.values()) {
      const sender = kind === "audio" ? p.audioSender : p.videoSender;
      if (sender) {
        void sender
          .replaceTrack(track)
          .then(() => this.limit(p))
          .catch(() => this.o.failed("The new media could not be sent."));
      } else if (track) {
        // No sender of this kind yet (a camera turned on in an audio call): renegotiates.
        const s = p.pc.addTrack(track, this.out);
        if (kind === "audio") p.audioSender = s;
        else p.videoSender = s;
      }
    }
    this.o.changed();
  }

  /** The connection to a session, made (with the outgoing tracks) if there is none yet. */
  peer(session: string, user: string): Peer {
    const existing = this.peers.get(session);
    if (existing) return existing;
    const pc = new RTCPeerConnection({ iceServers: this.o.iceServers });
    const p: Peer = {
      session,
      user,
      pc,
      remote: new MediaStream(),
      polite: isPolite(this.o.me, session),
      makingOffer: false,
      ignoreOffer: false,
      settingRemoteAnswerPending: false,
      audioSender: this.audio ? pc.addTrack(this.audio, this.out) : null,
      videoSender: this.video ? pc.addTrack(this.video, this.out) : null,
      queue: Promise.resolve(),
      lastStats: null,
    };
    this.peers.set(session, p);
    pc.ontrack = ({ track }) => {
      if (!p.remote.getTracks().includes(track)) p.remote.addTrack(track);
      track.onended = () => {
        p.remote.removeTrack(track);
        this.o.changed();
      };
      this.o.changed();
    };
    pc.onicecandidate = ({ candidate }) => {
      this.o.send(session, { kind: "ice", candidate: candidate ? candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = async () => {
      try {
        p.makingOffer = true;
        await pc.setLocalDescription();
        const d = pc.localDescription;
        if (d && (d.type === "offer" || d.type === "answer")) this.o.send(session, { kind: d.type, sdp: d.sdp });
        void this.limit(p);
      } catch {
        if (!this.closed) this.o.failed("The call could not be negotiated with a participant.");
      } finally {
        p.makingOffer = false;
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") void this.limit(p);
      if (pc.connectionState === "failed") pc.restartIce();
      this.o.changed();
    };
    this.o.changed();
    return p;
  }

  /** A signal from another session of the call. */
  signal(fromSession: string, fromUser: string, signal: Signal): void {
    if (this.closed) return;
    const p = this.peer(fromSession, fromUser);
    p.queue = p.queue.then(() => this.handle(p, signal)).catch(() => {
      if (!this.closed) this.o.failed("A participant's connection could not be set up.");
    });
  }

  private async handle(p: Peer, signal: Signal): Promise<void> {
    const pc = p.pc;
    if (signal.kind === "ice") {
      try {
        await pc.addIceCandidate(signal.candidate ?? undefined);
      } catch (e) {
        // Candidates of an offer this side ignored fail to apply: expected in a glare.
        if (!p.ignoreOffer) throw e;
      }
      return;
    }
    const { ignore } = incomingDescription(signal.kind, {
      polite: p.polite,
      makingOffer: p.makingOffer,
      signalingState: pc.signalingState,
      settingRemoteAnswerPending: p.settingRemoteAnswerPending,
    });
    p.ignoreOffer = ignore;
    if (ignore) return;
    p.settingRemoteAnswerPending = signal.kind === "answer";
    try {
      // A polite side in a glare rolls its own offer back implicitly.
      await pc.setRemoteDescription({ type: signal.kind, sdp: signal.sdp });
    } finally {
      p.settingRemoteAnswerPending = false;
    }
    if (signal.kind === "offer") {
      await pc.setLocalDescription();
      const d = pc.localDescription;
      if (d) this.o.send(p.session, { kind: "answer", sdp: d.sdp });
      void this.limit(p);
    }
  }

  /** Applies the media limits of the join answer to the video sent to one peer. */
  private async limit(p: Peer): Promise<void> {
    const limits = this.o.limits;
    const sender = p.videoSender;
    if (!limits || !sender?.track) return;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) return;
    const e = videoEncoding(limits, sender.track.getSettings().height);
    const first = params.encodings[0]!;
    if (first.maxBitrate === e.maxBitrate && first.scaleResolutionDownBy === e.scaleResolutionDownBy) return;
    first.maxBitrate = e.maxBitrate;
    first.scaleResolutionDownBy = e.scaleResolutionDownBy;
    try {
      await sender.setParameters(params);
    } catch {
      // A negotiation in flight changed the parameters: applied again after the next one.
    }
  }

  /** After the socket was down (signals may be lost): renegotiates the connections not up. */
  restartIce(): void {
    for (const p of this.peers.values()) if (p.pc.connectionState !== "connected") p.pc.restartIce();
  }

  /** Closes the connection to a session that left. */
  drop(session: string): void {
    const p = this.peers.get(session);
    if (!p) return;
    p.pc.close();
    this.peers.delete(session);
    this.o.changed();
  }

  /** One quality sample over every connected peer since the last call, or null. */
  async sample(now = Date.now()): Promise<QualitySample | null> {
    const samples: QualitySample[] = [];
    for (const p of this.peers.values()) {
      if (p.pc.connectionState !== "connected") continue;
      const report = await p.pc.getStats();
      const snap = snapshot(report.values() as Iterable<{ type: string; id: string }>, now);
      const s = p.lastStats ? qualitySample(p.lastStats, snap) : null;
      p.lastStats = snap;
      if (s) samples.push(s);
    }
    return combineSamples(samples);
  }

  close(): void {
    this.closed = true;
    for (const p of this.peers.values()) p.pc.close();
    this.peers.clear();
    for (const t of this.out.getTracks()) t.stop();
  }
}
