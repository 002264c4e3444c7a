// "Seen by …" under a conversation (GET /v1/conversations/{id}/receipts): who has read up to
// the newest message, refreshed when a receipt or a message arrives.

import { useEffect, useState } from "preact/hooks";
import { api, http } from "../api/client";
import { readers, seenLine } from "../gaps";
import type { RealtimeEvent } from "../realtime";
import "./gaps.css";

interface Props {
  id: string;
  me: string;
  /** The newest message's sequence and sender (nothing is shown for others' messages). */
  newest: { seq: number; sender_id: string } | null;
  names: ReadonlyMap<string, string>;
  subscribe: (l: (e: RealtimeEvent) => void) => () => void;
}

export function Receipts({ id, me, newest, names, subscribe }: Props) {
  const [receipts, setReceipts] = useState<{ user_id: string; read_seq: number }[]>([]);
  const [tick, setTick] = useState(0);

  useEffect(
    () =>
      subscribe((e) => {
        const d = e.data as { conversation_id?: string } | null;
        if (e.type === "receipt.updated" && d?.conversation_id === id) setTick((t) => t + 1);
      }),
    [id],
  );

  useEffect(() => {
    let live = true;
    void api((headers) => http.GET("/v1/conversations/{id}/receipts", { headers, params: { path: { id }, query: { limit: 100 } } }))
      .then((p) => live && setReceipts(p.items))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [id, tick, newest?.seq]);

  if (!newest || newest.sender_id !== me) return null;
  const line = seenLine(readers(receipts, newest.seq, me).map((u) => names.get(u) ?? "someone"));
  return (
    <p class="gaps-seen" aria-live="polite">
      {line}
    </p>
  );
}
