// How times are shown (in the reader's locale and time zone).

/** A date and time in full, e.g. "4 Dec 2026, 10:00" (files, versions, links, bans). */
export function dateTime(at: string | Date, locale?: string): string {
  return new Date(at).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}

/** When a conversation was last active: the time today, else the date. */
export function lastActivity(at: string, now = new Date()): string {
  const d = new Date(at);
  return d.toDateString() === now.toDateString()
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { day: "numeric", month: "short" });
}

/** "Ada is typing…", "Ada and Grace are typing…", "3 people are typing…", or "". */
export function typingLine(names: readonly string[]): string {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}
