import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Safety nets for a hung test, not speed checks (a test that bounds a duration says so
    // itself). A full run under load ~15 on two cores took 25 min, not 9, and tests that run a
    // dozen CLI processes one after another (each a fresh node loading the CLI: ~5 s each at that
    // load) took up to 55 s of the old 60 s; two timed out. Three minutes leaves them room.
    testTimeout: 180_000,
    hookTimeout: 180_000,
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
