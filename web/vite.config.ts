import { defineConfig } from "vite";

// The bundle is committed (web/dist) and embedded in the server binary, so the build must be
// byte-for-byte reproducible from the sources and the lock file: no timestamps, no source maps
// (they would carry absolute paths), content-hashed file names only.
export default defineConfig({
  base: "/",
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    // The server sends a CSP without 'unsafe-inline': nothing may be inlined into index.html.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev` against a server on :8080 (same-origin for cookies and the socket).
    proxy: {
      "/v1": { target: "http://127.0.0.1:8080", ws: true },
    },
  },
});
