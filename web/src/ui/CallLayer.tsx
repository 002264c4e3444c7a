// The app-level call layer: the incoming-call alert (Accept / Decline), and the call view of the
// call this tab is in (local preview, one tile per other participant session, controls). It
// lives above the conversations so a call goes on while the person reads other conversations.

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure, api, http } from "../api/client";
import {
  type Call,
  type CallSession,
  type Participant,
  connectionLabel,
  isLive,
  isStale,
  leftAlone,
  otherSessions,
  routeSignal,
} from "../calls/logic";
import { Mesh, type Peer } from "../calls/mesh";
import { CallRecorder, recordingName, saveRecording } from "../calls/recording";
import { type CallKind, onCallRequest, setCurrentCall } from "../calls/store";
import type { Realtime, RealtimeEvent } from "../realtime";
import { type Session, authHeaders } from "../session";
import { ErrorLine } from "./Note";
import "./calls.css";

interface Props {
  session: Session;
  realtime: Realtime | null;
  subscribe: (l: (e: RealtimeEvent) => void) => () => void;
  conversationName: (id: string) => string;
  /** The caller's role in a conversation ("owner", "admin", "member"; group owners/admins may end calls). */
  conversationRole: (id: string) => string | undefined;
  /** Bumped each time the socket (re)connects: what it missed must be fetched. */
  resyncs: number;
}

interface Flags {
  audio: boolean;
  video: boolean;
  screen: boolean;
}

const QUALITY_EVERY_MS = 10_000;

function message(e: unknown, fallback: string): string {
  if (e instanceof ApiFailure) return e.message;
  if (e instanceof DOMException) {
    if (e.name === "NotAllowedError") return "The browser was not allowed to use the microphone or camera.";
    if (e.name === "NotFoundError") return "No microphone or camera was found.";
    if (e.name === "NotReadableError") return "The microphone or camera is in use by another program.";
  }
  if (e instanceof Error && e.message) return e.message;
  return fallback;
}

async function userMedia(kind: CallKind, mic?: string, cam?: string): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("This browser cannot use a microphone or camera here (a secure https page is needed).");
  }
  return navigator.mediaDevices.getUserMedia({
    audio: mic ? { deviceId: { exact: mic } } : true,
    video: kind === "video" ? (cam ? { deviceId: { exact: cam } } : { height: { ideal: 720 } }) : false,
  });
}

function iceServers(cs: CallSession): RTCIceServer[] {
  return cs.ice_servers.map((s) => ({
    urls: s.urls,
    ...(s.username ? { username: s.username } : {}),
    ...(s.credential ? { credential: s.credential } : {}),
  }));
}

/** A video element fed a MediaStream through its DOM property (no inline style, no blob: URL). */
function StreamVideo({ stream, muted, hidden, label }: { stream: MediaStream; muted?: boolean; hidden: boolean; label: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const v = ref.current;
    if (!v) return;
    if (v.srcObject !== stream) v.srcObject = stream;
    v.play().catch(() => undefined);
  }, [stream]);
  return (
    <video
      ref={ref}
      class={hidden ? "call-video off" : "call-video"}
      autoplay
      playsInline
      muted={muted}
      aria-label={label}
    />
  );
}

function Flag({ on, text }: { on: boolean; text: string }) {
  return on ? <span class="call-flag">{text}</span> : null;
}

export function CallLayer({ session, realtime, subscribe, conversationName, conversationRole, resyncs }: Props) {
  const me = session.sessionId;
  const [ringing, setRinging] = useState<Call | null>(null);
  const [call, setCall] = useState<Call | null>(null);
  const [, setVersion] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [flags, setFlags] = useState<Flags>({ audio: true, video: false, screen: false });
  const [names, setNames] = useState<ReadonlyMap<string, string>>(new Map());
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const [mic, setMic] = useState("");
  const [cam, setCam] = useState("");
  const [busy, setBusy] = useState(false);
  const [recordingBusy, setRecordingBusy] = useState(false);

  const mesh = useRef<Mesh | null>(null);
  const callRef = useRef<Call | null>(null);
  const camera = useRef<MediaStreamTrack | null>(null);
  const screen = useRef<MediaStreamTrack | null>(null);
  const recorder = useRef<CallRecorder | null>(null);
  const hadOthers = useRef(false);
  const starting = useRef(false);
  const realtimeRef = useRef(realtime);
  realtimeRef.current = realtime;
  const acceptRef = useRef<HTMLButtonElement>(null);

  // --- lifecycle -----------------------------------------------------------------------------

  function begin(cs: CallSession, stream: MediaStream) {
    const m = new Mesh({
      me,
      iceServers: iceServers(cs),
      limits: cs.media_limits,
      send: (to, signal) => realtimeRef.current?.send("call.signal", { call_id: cs.id, to_session_id: to, signal }),
      changed: () => setVersion((v) => v + 1),
      failed: setError,
    });
    const audio = stream.getAudioTracks()[0] ?? null;
    const video = stream.getVideoTracks()[0] ?? null;
    camera.current = video;
    m.setAudio(audio);
    m.setVideo(video);
    mesh.current = m;
    callRef.current = cs;
    hadOthers.current = false;
    setFlags({ audio: audio !== null, video: video !== null, screen: false });
    setCall(cs);
    setRinging(null);
    setNotice(null);
    setCurrentCall(cs.conversation_id);
    // The newcomer offers to everyone already there; they answer (glare is handled either way).
    const others = otherSessions(cs, me);
    hadOthers.current = others.length > 0;
    for (const p of others) m.peer(p.session_id, p.user_id);
    void loadNames(cs.conversation_id);
    void listDevices();
    // Flags as the server knows them from the start (a camera or microphone may be missing).
    if (!audio || (cs.kind === "video" && !video)) void postMedia(cs.id, { audio: audio !== null, video: video !== null });
  }

  function finish(text: string | null) {
    mesh.current?.close();
    mesh.current = null;
    camera.current?.stop();
    camera.current = null;
    screen.current?.stop();
    screen.current = null;
    callRef.current = null;
    setCall(null);
    setCurrentCall(null);
    setNotice(text);
  }

  async function loadNames(conversationId: string) {
    try {
      const page = await api((headers) =>
        http.GET("/v1/conversations/{id}/members", {
          headers,
          params: { path: { id: conversationId }, query: { limit: 100 } },
        }),
      );
      setNames(new Map(page.items.map((m) => [m.user_id, m.display_name])));
    } catch {
      // Names are a nicety: participants are then "A participant".
    }
  }

  async function listDevices() {
    try {
      setDevices(await navigator.mediaDevices.enumerateDevices());
    } catch {
      setDevices([]);
    }
  }

  useEffect(() => {
    if (!call) return;
    const onChange = () => void listDevices();
    navigator.mediaDevices?.addEventListener("devicechange", onChange);
    return () => navigator.mediaDevices?.removeEventListener("devicechange", onChange);
  }, [call?.id]);

  /** A new state of the call this tab is in (from an answer or a `call.updated`). */
  function updated(c: Call) {
    const cur = callRef.current;
    if (!cur || cur.id !== c.id || isStale(c, cur)) return;
    callRef.current = c;
    setCall(c);
    const m = mesh.current;
    if (!isLive(c)) {
      void stopRecorder(c.id);
      finish(c.status === "ended" ? "The call ended." : `The call was ${c.status}.`);
      return;
    }
    if (!c.participants.some((p) => p.session_id === me && !p.left_at)) {
      finish("You are no longer in the call.");
      return;
    }
    const others = otherSessions(c, me);
    if (others.length > 0) hadOthers.current = true;
    if (m) {
      const here = new Set(others.map((p) => p.session_id));
      for (const s of [...m.peers.keys()]) {
        if (!here.has(s) && c.participants.some((p) => p.session_id === s && p.left_at)) m.drop(s);
      }
    }
    // Our recording was stopped by the server (it cannot be: only when we leave), or someone else's.
    if (recorder.current && c.recording?.by !== session.user.id) void stopRecorder(c.id);
    // The others have all gone: the call is over for this side too.
    if (leftAlone(c, me, hadOthers.current)) void leave(false, "Everyone else left: the call ended.");
  }

  // --- realtime ------------------------------------------------------------------------------

  useEffect(
    () =>
      subscribe((e) => {
        if (e.type === "call.ringing") {
          const c = e.data as Call;
          if (c.created_by === session.user.id || callRef.current?.id === c.id || !isLive(c)) return;
          setRinging(c);
        } else if (e.type === "call.updated") {
          const c = e.data as Call;
          setRinging((r) => {
            if (!r || r.id !== c.id) return r;
            // Over, or answered on another device of ours.
            const elsewhere = c.participants.some((p) => p.user_id === session.user.id && p.session_id !== me && !p.left_at);
            return !isLive(c) || elsewhere || c.declined_by.includes(session.user.id) ? null : c;
          });
          updated(c);
        } else if (e.type === "call.signal") {
          const r = routeSignal(e.data, callRef.current?.id ?? null, me);
          if (r) mesh.current?.signal(r.fromSession, r.fromUser, r.signal);
        }
      }),
    [session.sessionId],
  );

  // Starting a call from a conversation's header.
  useEffect(
    () =>
      onCallRequest((r) => {
        void start(r.conversationId, r.kind);
      }),
    [session.sessionId],
  );

  // The socket came back: the call's state and signals may have been missed meanwhile.
  useEffect(() => {
    const c = callRef.current;
    if (!c || resyncs === 0) return;
    void api((headers) => http.GET("/v1/calls/{id}", { headers, params: { path: { id: c.id } } })).then(updated, () => undefined);
    mesh.current?.restartIce();
  }, [resyncs]);

  useEffect(() => {
    if (ringing) acceptRef.current?.focus();
  }, [ringing?.id]);

  // A notice fades by itself.
  useEffect(() => {
    if (!notice) return;
    const t = setTimeout(() => setNotice(null), 8000);
    return () => clearTimeout(t);
  }, [notice]);

  // Quality samples while connected.
  useEffect(() => {
    if (!call) return;
    const id = call.id;
    const t = setInterval(() => {
      const m = mesh.current;
      if (!m) return;
      void m
        .sample()
        .then((s) => (s ? api((headers) => http.POST("/v1/calls/{id}/quality", { headers, params: { path: { id } }, body: s })) : null))
        .catch(() => undefined);
    }, QUALITY_EVERY_MS);
    return () => clearInterval(t);
  }, [call?.id]);

  // Closing the tab leaves the call (else the server's grace period takes the session out).
  useEffect(() => {
    if (!call) return;
    const id = call.id;
    const bye = () => {
      void http
        .POST("/v1/calls/{id}/leave", { headers: authHeaders(), params: { path: { id } }, keepalive: true })
        .catch(() => undefined);
    };
    addEventListener("pagehide", bye);
    return () => removeEventListener("pagehide", bye);
  }, [call?.id]);

  // Signed out (or the app went away) during a call: leave it.
  useEffect(
    () => () => {
      const c = callRef.current;
      finish(null);
      if (c) void api((headers) => http.POST("/v1/calls/{id}/leave", { headers, params: { path: { id: c.id } } })).catch(() => undefined);
    },
    [],
  );

  // --- actions -------------------------------------------------------------------------------

  async function start(conversationId: string, kind: CallKind) {
    if (callRef.current) {
      setError("You are already in a call. Leave it first.");
      return;
    }
    if (starting.current) return;
    starting.current = true;
    setError(null);
    setBusy(true);
    let stream: MediaStream | null = null;
    try {
      stream = await userMedia(kind);
      const cs = await api((headers) => http.POST("/v1/calls", { headers, body: { conversation_id: conversationId, kind } }));
      begin(cs, stream);
    } catch (e) {
      const live = e instanceof ApiFailure && e.status === 409 ? e.details?.call_id : undefined;
      if (stream && typeof live === "string") {
        // The conversation already has a live call: join it.
        await joinWith(live, stream);
      } else {
        for (const t of stream?.getTracks() ?? []) t.stop();
        setError(message(e, "The call could not be started."));
      }
    } finally {
      starting.current = false;
      setBusy(false);
    }
  }

  async function joinWith(id: string, stream: MediaStream) {
    try {
      const cs = await api((headers) => http.POST("/v1/calls/{id}/join", { headers, params: { path: { id } } }));
      begin(cs, stream);
    } catch (e) {
      for (const t of stream.getTracks()) t.stop();
      setError(message(e, "The call could not be joined."));
    }
  }

  async function accept() {
    const r = ringing;
    if (!r) return;
    setError(null);
    setBusy(true);
    try {
      // Answering a second call leaves the first.
      if (callRef.current) await leave(false);
      const stream = await userMedia(r.kind === "video" ? "video" : "audio");
      await joinWith(r.id, stream);
    } catch (e) {
      setError(message(e, "The call could not be joined."));
    } finally {
      setBusy(false);
    }
  }

  async function decline() {
    const r = ringing;
    if (!r) return;
    setRinging(null);
    try {
      await api((headers) => http.POST("/v1/calls/{id}/decline", { headers, params: { path: { id: r.id } } }));
    } catch (e) {
      if (!(e instanceof ApiFailure && e.status === 409)) setError(message(e, "The call could not be declined."));
    }
  }

  async function leave(end: boolean, text?: string) {
    const c = callRef.current;
    if (!c) return;
    const blob = recorder.current ? await recorder.current.stop() : null;
    const startedAt = recorder.current?.startedAt ?? new Date();
    recorder.current = null;
    finish(text ?? (end ? "You ended the call." : "You left the call."));
    try {
      const path = { id: c.id };
      if (end) await api((headers) => http.POST("/v1/calls/{id}/end", { headers, params: { path } }));
      else await api((headers) => http.POST("/v1/calls/{id}/leave", { headers, params: { path } }));
    } catch (e) {
      // Already over (someone else ended it): nothing to leave.
      if (!(e instanceof ApiFailure && (e.status === 409 || e.status === 404))) setError(message(e, "Leaving the call failed."));
    }
    if (blob) await upload(c.id, blob, startedAt);
  }

  async function postMedia(id: string, body: Partial<Flags>) {
    try {
      const c = await api((headers) => http.POST("/v1/calls/{id}/media", { headers, params: { path: { id } }, body }));
      updated(c);
    } catch (e) {
      setError(message(e, "The others could not be told about your microphone or camera."));
    }
  }

  function toggleMute() {
    const c = callRef.current;
    const t = mesh.current?.audioTrack;
    if (!c || !t) return;
    const audio = !flags.audio;
    t.enabled = audio;
    setFlags((f) => ({ ...f, audio }));
    void postMedia(c.id, { audio });
  }

  async function toggleCamera() {
    const c = callRef.current;
    const m = mesh.current;
    if (!c || !m) return;
    setError(null);
    if (camera.current) {
      camera.current.stop();
      camera.current = null;
      if (!screen.current) m.setVideo(null);
      setFlags((f) => ({ ...f, video: false }));
      void postMedia(c.id, { video: false });
      return;
    }
    try {
      const s = await userMedia("video", undefined, cam || undefined);
      for (const t of s.getAudioTracks()) t.stop();
      const track = s.getVideoTracks()[0] ?? null;
      if (!track || callRef.current !== c) {
        track?.stop();
        return;
      }
      camera.current = track;
      if (!screen.current) m.setVideo(track);
      setFlags((f) => ({ ...f, video: true }));
      void postMedia(c.id, { video: true });
    } catch (e) {
      setError(message(e, "The camera could not be turned on."));
    }
  }

  async function toggleScreen() {
    const c = callRef.current;
    const m = mesh.current;
    if (!c || !m) return;
    setError(null);
    if (screen.current) {
      stopSharing();
      return;
    }
    if (!navigator.mediaDevices?.getDisplayMedia) {
      setError("This browser cannot share a screen.");
      return;
    }
    try {
      const s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      const track = s.getVideoTracks()[0];
      if (!track || callRef.current !== c) {
        track?.stop();
        return;
      }
      screen.current = track;
      // The browser's own "Stop sharing" ends the track.
      track.onended = () => {
        if (screen.current === track) stopSharing();
      };
      m.setVideo(track);
      setFlags((f) => ({ ...f, screen: true }));
      void postMedia(c.id, { screen: true });
    } catch (e) {
      if (!(e instanceof DOMException && e.name === "NotAllowedError")) setError(message(e, "The screen could not be shared."));
    }
  }

  function stopSharing() {
    const c = callRef.current;
    screen.current?.stop();
    screen.current = null;
    mesh.current?.setVideo(camera.current);
    setFlags((f) => ({ ...f, screen: false }));
    if (c) void postMedia(c.id, { screen: false });
  }

  async function chooseMic(id: string) {
    setMic(id);
    const m = mesh.current;
    if (!m) return;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: id ? { deviceId: { exact: id } } : true });
      const track = s.getAudioTracks()[0];
      if (!track) return;
      track.enabled = flags.audio;
      const old = m.audioTrack;
      m.setAudio(track);
      old?.stop();
    } catch (e) {
      setError(message(e, "That microphone could not be used."));
    }
  }

  async function chooseCam(id: string) {
    setCam(id);
    const m = mesh.current;
    if (!m || !camera.current) return;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: id ? { deviceId: { exact: id } } : true });
      const track = s.getVideoTracks()[0];
      if (!track) return;
      const old = camera.current;
      camera.current = track;
      if (!screen.current) m.setVideo(track);
      old.stop();
    } catch (e) {
      setError(message(e, "That camera could not be used."));
    }
  }

  async function toggleRecording() {
    const c = callRef.current;
    const m = mesh.current;
    if (!c || !m) return;
    setError(null);
    setRecordingBusy(true);
    try {
      if (recorder.current) {
        await stopRecorder(c.id);
        return;
      }
      // The server shows everyone that we record before a single frame is recorded.
      updated(
        await api((headers) =>
          http.POST("/v1/calls/{id}/recording", { headers, params: { path: { id: c.id } }, body: { action: "start" } }),
        ),
      );
      try {
        const peers = [...m.peers.values()];
        const video = peers.map((p) => p.remote.getVideoTracks()[0]).find((t) => t) ?? m.videoTrack;
        recorder.current = new CallRecorder([m.out, ...peers.map((p) => p.remote)], video ?? null);
      } catch (e) {
        await api((headers) =>
          http.POST("/v1/calls/{id}/recording", { headers, params: { path: { id: c.id } }, body: { action: "stop" } }),
        ).then(updated, () => undefined);
        throw e;
      }
    } catch (e) {
      setError(message(e, "The recording could not be started."));
    } finally {
      setRecordingBusy(false);
    }
  }

  async function stopRecorder(callId: string) {
    const r = recorder.current;
    if (!r) return;
    recorder.current = null;
    const blob = await r.stop();
    if (callRef.current?.id === callId) {
      try {
        updated(
          await api((headers) =>
            http.POST("/v1/calls/{id}/recording", { headers, params: { path: { id: callId } }, body: { action: "stop" } }),
          ),
        );
      } catch (e) {
        if (!(e instanceof ApiFailure && e.status === 409)) setError(message(e, "The recording could not be stopped."));
      }
    }
    await upload(callId, blob, r.startedAt);
  }

  async function upload(callId: string, blob: Blob, startedAt: Date) {
    if (blob.size === 0) return;
    setNotice("Saving the recording to your drive…");
    try {
      await saveRecording(callId, blob, recordingName(startedAt, blob.type));
      setNotice("The recording was saved to your drive and attached to the call.");
    } catch (e) {
      setError(message(e, "The recording could not be saved."));
      setNotice(null);
    }
  }

  // --- view ----------------------------------------------------------------------------------

  const ringDialog = ringing && (
    <div class="call-ringing" role="alertdialog" aria-labelledby="call-ringing-title" aria-describedby="call-ringing-from">
      <h2 id="call-ringing-title">{ringing.kind === "video" ? "Incoming video call" : "Incoming call"}</h2>
      <p id="call-ringing-from">From {conversationName(ringing.conversation_id)}</p>
      <div class="call-buttons">
        <button type="button" ref={acceptRef} disabled={busy} onClick={() => void accept()}>
          Accept
        </button>
        <button type="button" class="danger" onClick={() => void decline()}>
          Decline
        </button>
      </div>
    </div>
  );

  const nameOf = (userId: string) => (userId === session.user.id ? "You" : (names.get(userId) ?? "A participant"));
  const m = mesh.current;

  if (!call || !m) {
    return (
      <>
        {ringDialog}
        {(error || notice) && (
          <div class="call-toast">
            <ErrorLine text={error} />
            {notice && <p role="status">{notice}</p>}
            <button type="button" class="secondary" onClick={() => (setError(null), setNotice(null))}>
              Dismiss
            </button>
          </div>
        )}
      </>
    );
  }

  const others = otherSessions(call, me);
  const title = `${call.kind === "video" ? "Video call" : "Call"}: ${conversationName(call.conversation_id)}`;
  const rec = call.recording;
  const role = conversationRole(call.conversation_id);
  const canEnd = call.created_by === session.user.id || role === "owner" || role === "admin";
  const mics = devices.filter((d) => d.kind === "audioinput");
  const cams = devices.filter((d) => d.kind === "videoinput");
  const status =
    others.length === 0
      ? call.status === "ringing"
        ? "Ringing…"
        : "Waiting for others…"
      : others.length === 1
        ? "In call"
        : `In call with ${others.length} others`;

  return (
    <>
      {ringDialog}
      <section class="call-view" aria-labelledby="call-view-title">
        <header class="call-head">
          <h2 id="call-view-title">{title}</h2>
          <p class="call-status" role="status">
            {status}
          </p>
          {rec && (
            <p class="call-recording" role="status">
              Recording by {nameOf(rec.by)}
            </p>
          )}
        </header>
        <ul class="call-tiles" aria-label="Participants">
          <li class="call-tile local">
            <StreamVideo stream={m.out} muted hidden={!m.videoTrack} label="Your camera" />
            <span class="call-name">You</span>
            <Flag on={!flags.audio} text="Muted" />
            <Flag on={flags.screen} text="Sharing screen" />
          </li>
          {others.map((p) => (
            <RemoteTile key={p.session_id} participant={p} peer={m.peers.get(p.session_id)} name={nameOf(p.user_id)} />
          ))}
        </ul>
        <div class="call-controls" role="group" aria-label="Call controls">
          <button type="button" onClick={toggleMute} disabled={!m.audioTrack}>
            {flags.audio ? "Mute" : "Unmute"}
          </button>
          <button type="button" onClick={() => void toggleCamera()}>
            {flags.video ? "Turn camera off" : "Turn camera on"}
          </button>
          <button type="button" onClick={() => void toggleScreen()}>
            {flags.screen ? "Stop sharing" : "Share screen"}
          </button>
          <button
            type="button"
            disabled={recordingBusy || (rec !== null && rec !== undefined && rec.by !== session.user.id)}
            onClick={() => void toggleRecording()}
          >
            {recorder.current ? "Stop recording" : "Record"}
          </button>
          <button type="button" class="danger" onClick={() => void leave(false)}>
            Leave
          </button>
          {canEnd && (
            <button type="button" class="danger" onClick={() => void leave(true)}>
              End call
            </button>
          )}
        </div>
        <details class="call-devices">
          <summary>Devices</summary>
          <label>
            Microphone
            <select value={mic} onChange={(e) => void chooseMic(e.currentTarget.value)}>
              <option value="">Default</option>
              {mics.map((d, i) => (
                <option key={d.deviceId} value={d.deviceId}>
                  {d.label || `Microphone ${i + 1}`}
                </option>
              ))}
            </select>
          </label>
          <label>
            Camera
            <select value={cam} onChange={(e) => void chooseCam(e.currentTarget.value)}>
              <option value="">Default</option>
              {cams.map((d, i) => (
                <option key={d.deviceId} value={d.deviceId}>
                  {d.label || `Camera ${i + 1}`}
                </option>
              ))}
            </select>
          </label>
        </details>
        <ErrorLine text={error} />
        {notice && <p role="status">{notice}</p>}
      </section>
    </>
  );
}

function RemoteTile({ participant, peer, name }: { participant: Participant; peer: Peer | undefined; name: string }) {
  const state = peer?.pc.connectionState;
  const hasVideo = (peer?.remote.getVideoTracks().length ?? 0) > 0 && (participant.video || participant.screen);
  return (
    <li class="call-tile" data-connection={state ?? "new"} aria-label={name}>
      {peer && <StreamVideo stream={peer.remote} hidden={!hasVideo} label={`${name}'s video`} />}
      <span class="call-name">{name}</span>
      <span class="call-connection">{connectionLabel(state)}</span>
      <Flag on={!participant.audio} text="Muted" />
      <Flag on={participant.screen} text="Sharing screen" />
    </li>
  );
}
