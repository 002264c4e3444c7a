import { defineConfig } from "vitest/config";

// Browser tests: the real server binary and Debian's Chromium, driven by playwright-core.
export default defineConfig({
  test: {
    // `npm run screenshots` and `npm run bench` run only their own file; `npm run e2e` the tests.
    include: process.env.SC_SCREENSHOTS
      ? ["e2e/screenshots.ts"]
      : process.env.SC_BENCH
        ? ["e2e/bench.ts"]
        : ["e2e/**/*.spec.ts"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One server and one browser per file; files run one after another (2 cores).
    fileParallelism: false,
  },
});
