import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { requireBuild } from "../mcp/helpers.js";
import { startMcpReaper, startRoster, waitForTerminal } from "../helpers/roster-process.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { writePersonas } from "../supervisor/helpers.js";

/**
 * Two supervisors share a database, one with its wall clock 30 s ahead (issue 12,
 * acceptance; docs/ARCHITECTURE.md rule 14): running tasks far longer than their
 * lease, neither reaps the other's live leases, and every task runs once. Both are
 * real `roster start` processes; the skew is ROSTER_CLOCK_OFFSET_MS (a shifted wall
 * clock for that process). Tasks last 8 s against a 1.5 s lease, so each lease is
 * renewed about 16 times, while the supervisors' reapers and a third judge, a
 * `roster mcp` 30 s behind reaping every 100 ms, look on. The issue asks for
 * 1-minute tasks; 8 s (5 leases) keeps the suite fast and shows the same thing.
 */
let temp: TempDir | null = null;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  temp?.cleanup();
  temp = null;
});

describe("two supervisors whose clocks are 30 s apart", () => {
  it("never reap each other's live leases: every long task runs once and completes", async () => {
    requireBuild();
    temp = makeTempDir("roster-skew-");
    const personasDir = temp.path("personas");
    mkdirSync(personasDir);
    writePersonas(personasDir, [{ id: "long", adapter: { kind: "sleep" }, concurrency: 6, leaseMs: 1_500, timeoutMs: 60_000, retry: { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 } }]);
    const dbPath = temp.path("roster.db");
    const store: Store = await openStore({ path: dbPath });
    try {
      await syncPersonas(store, personasDir, Date.now());
      for (const offsetMs of [0, 30_000]) {
        children.push(await startRoster(dbPath, personasDir, { env: { ROSTER_CLOCK_OFFSET_MS: String(offsetMs) }, args: ["--concurrency", "3", "--log-level", "info"] }));
      }
      children.push(startMcpReaper(dbPath, -30_000));
      const { ids } = await store.tasks.enqueue({ tasks: Array.from({ length: 6 }, (_, i) => ({ persona: "long", title: `long ${i}`, payload: { ms: 8_000 } })), now: Date.now() });
      const tasks = await waitForTerminal(store, ids, 60_000);
      for (const task of tasks) {
        expect(task.status, `task ${task.id}`).toBe("completed");
        expect(task.attempts, `task ${task.id} attempts`).toBe(1);
        const types = task.events.map((e) => e.type);
        expect(types.filter((t) => t === "lease:expired"), `task ${task.id}: ${types.join(", ")}`).toEqual([]);
        expect(types.filter((t) => t === "task:claimed")).toHaveLength(1);
        expect(types.filter((t) => t === "task:completed")).toHaveLength(1);
      }
      // Both supervisors ran some of them (each has 3 slots for 6 tasks; the persona allows 6 at once across both, rule 15).
      const holders = new Set(tasks.map((t) => t.events.find((e) => e.type === "task:claimed")?.agentId));
      expect(holders.size).toBe(2);
    } finally {
      await store.close();
    }
  });
});
