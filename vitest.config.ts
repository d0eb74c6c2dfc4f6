import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Worker-thread and child-process tests share two cores; forks keep native
    // better-sqlite3 handles out of each other's way.
    pool: "forks",
    // Vitest's default is one fork per CPU minus one: a single fork on these 2-core
    // machines, which ran the suite's files one after another. Most files wait on
    // child processes, threads and timers rather than the CPU, so three forks share
    // two cores well; the timing-sensitive checks bound waits loosely for that.
    maxWorkers: 3,
  },
});
