import { defineConfig } from "vitest/config";

// Unit tests of the client logic (pure functions, no DOM); the browser tests are in e2e/.
export default defineConfig({
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
