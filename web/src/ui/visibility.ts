// Whether this tab is shown: read receipts and "read" marks are sent only while it is.

import { useEffect, useState } from "preact/hooks";

/** True while the document is visible, updated on `visibilitychange`. */
export function useDocumentVisible(): boolean {
  const [visible, setVisible] = useState(document.visibilityState === "visible");
  useEffect(() => {
    const onChange = () => setVisible(document.visibilityState === "visible");
    document.addEventListener("visibilitychange", onChange);
    return () => document.removeEventListener("visibilitychange", onChange);
  }, []);
  return visible;
}
