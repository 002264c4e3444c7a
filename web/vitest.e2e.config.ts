import { defineConfig } from "vitest/config";

// Browser tests: the real server binary and Debian's Chromium, driven by playwright-core.
export default defineConfig({
  test: {
    include: ["e2e/**/*.spec.ts"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One server and one browser per file; files run one after another (2 cores).
    fileParallelism: false,
  },
});
