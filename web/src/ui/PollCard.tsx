// A poll message: the options with their live counts, voting (one option, or several when the
// poll allows), changing or withdrawing one's vote, and closing it for its sender or a group's
// owner/admin. My vote comes with history pages (`my_vote`), else from the voters list (not
// anonymous polls) or from this page's own votes.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { type Message, api, http } from "../api/client";
import { type Poll, isClosed, percent } from "../polls";
import { apiErrorText } from "../errors";

/** My choice per poll message, for this page's lifetime (rows come and go as one scrolls). */
const myVotes = new Map<string, number[]>();

interface Props {
  message: Message;
  poll: Poll;
  me: string;
  canClose: boolean;
  onChanged: (m: Message) => void;
  onError: (text: string) => void;
}

function Bar({ share }: { share: number }) {
  const ref = useRef<HTMLSpanElement>(null);
  // CSSOM, not a style attribute: the CSP has no 'unsafe-inline' for styles.
  useLayoutEffect(() => {
    if (ref.current) ref.current.style.width = `${share}%`;
  }, [share]);
  return (
    <span class="poll-bar" aria-hidden="true">
      <span ref={ref} />
    </span>
  );
}

export function PollCard({ message: m, poll, me, canClose, onChanged, onError }: Props) {
  if (poll.my_vote && !myVotes.has(m.id)) myVotes.set(m.id, poll.my_vote);
  const [mine, setMine] = useState<number[] | null>(myVotes.get(m.id) ?? null);
  const [choice, setChoice] = useState<number[]>(mine ?? []);
  const [busy, setBusy] = useState(false);
  const closed = isClosed(poll);

  useEffect(() => {
    if (poll.anonymous || myVotes.has(m.id)) return;
    let live = true;
    void api((headers) => http.GET("/v1/messages/{id}/votes", { headers, params: { path: { id: m.id } } }))
      .then((v) => {
        if (!live) return;
        const ids = v.options.filter((o) => o.voters.includes(me)).map((o) => o.id);
        myVotes.set(m.id, ids);
        setMine(ids);
        setChoice(ids);
      })
      .catch(() => {
        // Unknown: the poll can still be voted on.
      });
    return () => {
      live = false;
    };
  }, [m.id]);

  function remember(ids: number[]) {
    myVotes.set(m.id, ids);
    setMine(ids);
    setChoice(ids);
  }

  async function run(work: () => Promise<Message>, after: () => void, failed: string) {
    setBusy(true);
    try {
      onChanged(await work());
      after();
    } catch (e) {
      onError(apiErrorText(e, failed));
    } finally {
      setBusy(false);
    }
  }

  function vote(e: Event) {
    e.preventDefault();
    if (choice.length === 0) return;
    const ids = [...choice];
    void run(
      () =>
        api((headers) =>
          http.POST("/v1/messages/{id}/votes", { headers, params: { path: { id: m.id } }, body: { option_ids: ids } }),
        ),
      () => remember(ids),
      "The vote could not be recorded.",
    );
  }

  const voted = (mine?.length ?? 0) > 0;
  const name = `poll-${m.id}`;
  return (
    <form class="poll" onSubmit={vote} aria-label={`Poll: ${m.content ?? ""}`}>
      <fieldset disabled={busy}>
        <legend>
          {poll.multiple ? "Choose one or more" : "Choose one"}
          {poll.anonymous && " · anonymous"}
          {closed ? " · closed" : poll.closes_at ? ` · closes ${new Date(poll.closes_at).toLocaleString()}` : ""}
        </legend>
        {poll.options.map((o) => {
          const share = percent(o.votes, poll.voters);
          const checked = choice.includes(o.id);
          return (
            <label key={o.id} class={`poll-option${mine?.includes(o.id) ? " chosen" : ""}`}>
              <input
                type={poll.multiple ? "checkbox" : "radio"}
                name={name}
                checked={checked}
                disabled={closed}
                onChange={() =>
                  setChoice(poll.multiple ? (checked ? choice.filter((x) => x !== o.id) : [...choice, o.id]) : [o.id])
                }
              />
              <span class="poll-text">{o.text}</span>
              <span class="poll-count">
                {o.votes} {o.votes === 1 ? "vote" : "votes"} ({share}%)
                {mine?.includes(o.id) && <span class="visually-hidden">, your choice</span>}
              </span>
              <Bar share={share} />
            </label>
          );
        })}
        <p class="poll-summary" aria-live="polite">
          {poll.voters} {poll.voters === 1 ? "person voted" : "people voted"}
        </p>
        {!closed && (
          <span class="poll-actions">
            <button type="submit" disabled={choice.length === 0}>
              {voted ? "Change vote" : "Vote"}
            </button>
            {voted && (
              <button
                type="button"
                class="secondary"
                onClick={() =>
                  void run(
                    () => api((headers) => http.DELETE("/v1/messages/{id}/votes", { headers, params: { path: { id: m.id } } })),
                    () => remember([]),
                    "The vote could not be withdrawn.",
                  )
                }
              >
                Withdraw vote
              </button>
            )}
            {canClose && (
              <button
                type="button"
                class="secondary"
                onClick={() => {
                  if (!confirm("Close this poll? Nobody can vote on it afterwards.")) return;
                  void run(
                    () =>
                      api((headers) => http.POST("/v1/messages/{id}/poll/close", { headers, params: { path: { id: m.id } } })),
                    () => undefined,
                    "The poll could not be closed.",
                  );
                }}
              >
                Close poll
              </button>
            )}
          </span>
        )}
      </fieldset>
    </form>
  );
}
