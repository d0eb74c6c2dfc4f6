import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { openStore, type Store } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { roster } from "../cli/helpers.js";
import { requireBuild } from "../mcp/helpers.js";
import { usePostgres } from "../helpers/postgres.js";
import { startMcpReaper, startRoster, waitForTerminal, type RosterProcess } from "../helpers/roster-process.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { writePersonas } from "../supervisor/helpers.js";

/**
 * One clock on PostgreSQL (issue 19, deliverable 4; docs/postgres.md "Time"): hosts
 * whose wall clocks are a minute apart share one database and agree on time,
 * because every process stamps and compares store times on the server's clock
 * (ServerClock, measured at open). Real processes: `roster start` A with its clock
 * 60 s ahead (ROSTER_CLOCK_OFFSET_MS), `roster start` B on time, a `roster mcp` 60 s
 * behind reaping every 100 ms, and `roster add --delay` run 60 s behind.
 *
 * - Delays: tasks enqueued by the host 60 s behind with delays of 4–6 s are
 *   claimed by the host 60 s ahead neither early nor more than a small bound late,
 *   as the test (on the server's clock too) sees it. Without one clock the writer
 *   would have set run_at a minute in the past and the claimer claimed at once.
 * - Leases: 8 s tasks on 1.5 s leases spread over A and B, the MCP's reaper and the
 *   supervisors' own looking on: no lease is reaped, every task claimed once and
 *   completed once.
 */
const server = await usePostgres();

let temp: TempDir | null = null;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  temp?.cleanup();
  temp = null;
});

/** The hostOffsetMs the process logged at start ("store times follow the database server's clock"). */
function loggedOffset(proc: RosterProcess): { hostOffsetMs: number; rttMs: number } | null {
  for (const line of proc.log().split("\n")) {
    if (!line.includes("database server's clock")) continue;
    return JSON.parse(line) as { hostOffsetMs: number; rttMs: number };
  }
  return null;
}

/** How far a measured offset may be off: half the round trip it kept (the midpoint rule), 2 ms for whole-ms clocks. */
const measuredTo = (rttMs: number): number => rttMs / 2 + 2;

/**
 * How late after run_at a claim may be seen. The hosts are 60 s apart, so a claimer reading
 * run_at on its own clock would be a minute off; 5 s tells that apart and leaves a loaded
 * machine (load 20 on 2 cores: seconds per step) room for its timer, claim and this watch.
 */
const DUE_BOUND_MS = 5_000;

describe.skipIf(!server.available)("postgres: hosts whose clocks are a minute apart", () => {
  it("honour delays on the server's time and never reap each other's live leases", async () => {
    requireBuild();
    temp = makeTempDir("roster-pg-skew-");
    const personasDir = temp.path("personas");
    mkdirSync(personasDir);
    const retry = { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 };
    writePersonas(personasDir, [
      { id: "long", adapter: { kind: "sleep" }, concurrency: 6, leaseMs: 1_500, timeoutMs: 60_000, retry },
      { id: "due", adapter: { kind: "echo" }, concurrency: 3, leaseMs: 1_500, timeoutMs: 10_000, retry },
    ]);
    const url = server.url();
    const store: Store = await openStore({ path: url });
    try {
      await syncPersonas(store, personasDir, systemClock.now());
      const ahead = await startRoster(url, personasDir, { env: { ROSTER_CLOCK_OFFSET_MS: "60000" }, args: ["--concurrency", "3", "--log-level", "info"] });
      children.push(ahead);
      children.push(startMcpReaper(url, -60_000));
      // The supervisor 60 s ahead measured that; the test process (on time) measured about 0.
      const logged = loggedOffset(ahead)!;
      expect(Math.abs(logged.hostOffsetMs + 60_000)).toBeLessThanOrEqual(measuredTo(logged.rttMs));
      expect(Math.abs(store.clockOffset!().hostOffsetMs)).toBeLessThanOrEqual(measuredTo(store.clockOffset!().rttMs));

      // Delayed tasks written by a host 60 s behind, claimed by the host 60 s ahead (the only supervisor yet).
      const delays = [4_000, 5_000, 6_000];
      const due: Array<{ id: number; enqueuedAt: number; returnedAt: number }> = [];
      // Watch, on the server's clock, for the moment each leaves pending (from as soon as it exists).
      const leftPending = new Map<number, number>();
      const sawPending = new Set<number>();
      let adding = true;
      const watching = (async () => {
        const watchUntil = Date.now() + 30_000;
        while ((adding || leftPending.size < due.length) && Date.now() < watchUntil) {
          for (const { id } of due) {
            if (leftPending.has(id)) continue;
            if ((await store.tasks.get({ taskId: id })).status !== "pending") leftPending.set(id, systemClock.now());
            else sawPending.add(id);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      for (const delay of delays) {
        const enqueuedAt = systemClock.now();
        const added = await roster(["add", "--db", url, "--persona", "due", "--title", `due in ${delay} ms`, "--delay", String(delay), "--json"], {
          env: { ROSTER_CLOCK_OFFSET_MS: "-60000" },
        });
        expect(added.code, added.stderr).toBe(0);
        due.push({ id: (JSON.parse(added.stdout) as { id: number }).id, enqueuedAt, returnedAt: systemClock.now() });
      }
      adding = false;
      await watching;
      const dueTasks = await waitForTerminal(store, due.map((d) => d.id), 15_000 + DUE_BOUND_MS);
      dueTasks.forEach((task, i) => {
        const { enqueuedAt, returnedAt } = due[i]!;
        // Written on the server's clock by the host 60 s behind: created while its `roster add` ran, due `delay` later.
        expect(task.createdAt, `task ${task.id} createdAt`).toBeGreaterThanOrEqual(enqueuedAt);
        expect(task.createdAt, `task ${task.id} createdAt`).toBeLessThanOrEqual(returnedAt);
        expect(task.runAt - task.createdAt).toBe(delays[i]);
        // Claimed by the host 60 s ahead not before run_at, and soon after it.
        expect(sawPending.has(task.id), `task ${task.id} was watched while pending`).toBe(true);
        const seen = leftPending.get(task.id)!;
        expect(seen, `task ${task.id} left pending`).toBeGreaterThanOrEqual(task.runAt);
        expect(seen - task.runAt, `task ${task.id} lateness`).toBeLessThan(DUE_BOUND_MS);
        expect(task.claimedAt! - task.runAt, `task ${task.id} claimedAt`).toBeGreaterThanOrEqual(0);
        expect(task.status).toBe("completed");
        expect(task.attempts).toBe(1);
      });

      // Long tasks on short leases over both supervisors, with the judge 60 s behind reaping every 100 ms.
      const onTime = await startRoster(url, personasDir, { args: ["--concurrency", "3", "--log-level", "info"] });
      children.push(onTime);
      const { ids } = await store.tasks.enqueue({ tasks: Array.from({ length: 6 }, (_, i) => ({ persona: "long", title: `long ${i}`, payload: { ms: 8_000 } })), now: systemClock.now() });
      const tasks = await waitForTerminal(store, ids, 60_000);
      for (const task of tasks) {
        expect(task.status, `task ${task.id}`).toBe("completed");
        expect(task.attempts, `task ${task.id} attempts`).toBe(1);
        const types = task.events.map((e) => e.type);
        expect(types.filter((t) => t === "lease:expired"), `task ${task.id}: ${types.join(", ")}`).toEqual([]);
        expect(types.filter((t) => t === "task:claimed")).toHaveLength(1);
        expect(types.filter((t) => t === "task:completed")).toHaveLength(1);
      }
      const holders = new Set(tasks.map((t) => t.events.find((e) => e.type === "task:claimed")?.agentId));
      expect(holders.size).toBe(2);
    } finally {
      await store.close();
    }
  });
});
