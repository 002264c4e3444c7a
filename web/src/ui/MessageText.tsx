import { linkify } from "../links";

/**
 * Message text as text: Preact sets it as text nodes (never innerHTML), and only absolute
 * http(s) URLs become links, opened in a new tab without access to this page.
 */
export function MessageText({ text }: { text: string }) {
  return (
    <>
      {linkify(text).map((s, i) =>
        s.kind === "link" ? (
          <a key={i} href={s.href} target="_blank" rel="noopener noreferrer">
            {s.text}
          </a>
        ) : (
          s.text
        ),
      )}
    </>
  );
}
