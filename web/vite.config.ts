import { resolve } from "node:path";
import { defineConfig } from "vite";

const here = new URL(".", import.meta.url).pathname;

// The bundle is committed (web/dist) and embedded in the server binary, so the build must be
// byte-for-byte reproducible from the sources and the lock file: no timestamps, no source maps
// (they would carry absolute paths), content-hashed file names only — except the service
// worker, which must keep one URL (/sw.js, scope "/") and is served `no-cache`.
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
    rollupOptions: {
      input: { index: resolve(here, "index.html"), sw: resolve(here, "sw/sw.ts") },
      output: {
        entryFileNames: (chunk) => (chunk.name === "sw" ? "sw.js" : "assets/[name]-[hash].js"),
      },
    },
  },
  plugins: [
    {
      // The worker is registered as a classic script: it must be one self-contained file,
      // with no import of a shared chunk and no export.
      name: "self-contained-service-worker",
      generateBundle(_, bundle) {
        const sw = bundle["sw.js"];
        if (!sw || sw.type !== "chunk") throw new Error("the build did not emit sw.js");
        if (sw.imports.length || sw.dynamicImports.length || sw.exports.length || /^\s*(import|export)\b/m.test(sw.code)) {
          throw new Error("sw.js must not import or export anything (it would share a chunk with the app)");
        }
      },
    },
  ],
  server: {
    // `npm run dev` against a server on :8080 (same-origin for cookies and the socket).
    proxy: {
      "/v1": { target: "http://127.0.0.1:8080", ws: true },
    },
  },
});
