// A cursor-paged list on a screen: the first page, then "Load more" appending the next one
// (API.md: `limit`, `cursor` in, `items`, `next_cursor` out).

import { useState } from "preact/hooks";

export interface ListPage<T> {
  items: T[];
  next_cursor?: string | null;
}

/**
 * The rows read so far, the next page's cursor, whether a page is on its way and the failure of
 * the last one. `load(fetchPage)` reads the first page anew, `load(fetchPage, next)` appends the
 * next; `problem` turns a failure into the text to show (null: handled elsewhere, nothing shown);
 * `merge` joins an appended page to the rows (default: after them).
 */
export function usePagedList<T>(
  problem: (e: unknown) => string | null,
  merge: (rows: T[], more: T[]) => T[] = (rows, more) => [...rows, ...more],
) {
  const [rows, setRows] = useState<T[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function load(fetchPage: (cursor: string | undefined) => Promise<ListPage<T>>, cursor?: string): Promise<ListPage<T> | null> {
    setLoading(true);
    setError(null);
    try {
      const page = await fetchPage(cursor);
      setRows((cur) => (cursor ? merge(cur, page.items) : page.items));
      setNext(page.next_cursor ?? null);
      return page;
    } catch (e) {
      setError(problem(e));
      return null;
    } finally {
      setLoading(false);
    }
  }

  return { rows, setRows, next, loading, error, load };
}

/** The "Load more" button under a paged list, shown while there is a next page. */
export function LoadMore({ next, loading, onMore, label }: { next: string | null; loading: boolean; onMore: (cursor: string) => void; label: string }) {
  if (!next) return null;
  return (
    <button type="button" class="secondary" disabled={loading} onClick={() => onMore(next)}>
      {label}
    </button>
  );
}
