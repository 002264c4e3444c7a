// A QR code drawn as one SVG path of its dark modules (elements, never markup from a string).
// The encoder is loaded on first use, so it is not in the initial bundle.

import { useEffect, useState } from "preact/hooks";

/** The path of the dark modules of `matrix`, one unit per module, offset by `quiet`. */
export function modulesPath(matrix: readonly (readonly boolean[])[], quiet: number): string {
  let d = "";
  matrix.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) d += `M${x + quiet} ${y + quiet}h1v1h-1z`;
    }),
  );
  return d;
}

export function QrCode({ text, label }: { text: string; label: string }) {
  const [matrix, setMatrix] = useState<boolean[][] | null>(null);
  useEffect(() => {
    let live = true;
    void import("uqr").then(({ encode }) => {
      if (live) setMatrix(encode(text, { ecc: "M", border: 0 }).data);
    });
    return () => {
      live = false;
    };
  }, [text]);
  if (!matrix) return <p role="status">Drawing the QR code…</p>;
  // The standard quiet zone of 4 modules, black on white in either colour scheme (scanners
  // expect dark modules on a light ground).
  const size = matrix.length + 8;
  return (
    <svg class="qr" role="img" aria-label={label} viewBox={`0 0 ${size} ${size}`} width={size * 5} height={size * 5}>
      <rect width={size} height={size} fill="#fff" />
      <path d={modulesPath(matrix, 4)} fill="#000" shape-rendering="crispEdges" />
    </svg>
  );
}
