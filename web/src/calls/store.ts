// What the conversation header's call buttons and the app-level call layer share: a request to
// start a call, and which call (if any) this tab is in, so the buttons know when to stay quiet.

export type CallKind = "audio" | "video";

export interface CallRequest {
  conversationId: string;
  kind: CallKind;
}

type Listener<T> = (v: T) => void;

const requests = new Set<Listener<CallRequest>>();
const current = new Set<Listener<string | null>>();
let inCall: string | null = null;

/** Asks the call layer to start (or join the live) call of a conversation. */
export function requestCall(r: CallRequest): void {
  for (const l of requests) l(r);
}

export function onCallRequest(l: Listener<CallRequest>): () => void {
  requests.add(l);
  return () => requests.delete(l);
}

/** The conversation whose call this tab is in (null: none). */
export function currentCall(): string | null {
  return inCall;
}

export function setCurrentCall(conversationId: string | null): void {
  inCall = conversationId;
  for (const l of current) l(conversationId);
}

export function onCurrentCall(l: Listener<string | null>): () => void {
  current.add(l);
  return () => current.delete(l);
}
