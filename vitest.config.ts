import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Worker-thread and child-process tests share two cores; forks keep native
    // better-sqlite3 handles out of each other's way.
    pool: "forks",
  },
});
