import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { openStore, type Store, type TaskDetail } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { requireBuild, until } from "../mcp/helpers.js";
import { usePostgres } from "../helpers/postgres.js";
import { logLines, startMcpReaper, startRoster, waitForTerminal } from "../helpers/roster-process.js";
import { startCutProxy, type CutProxy } from "../helpers/tcp-proxy.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { writePersonas } from "../supervisor/helpers.js";

/**
 * A supervisor that loses its PostgreSQL (issue 19, deliverable 5; docs/postgres.md,
 * "Losing the database"). Real processes: `roster start` A reaches PostgreSQL through
 * a TCP proxy the test cuts (bytes stop, nothing is refused: a pulled cable) and
 * restores; `roster start` B and a `roster mcp` reaping every 100 ms reach it
 * directly. Tasks sleep 20 s on 5 s leases. The cut either drops bytes (a pulled
 * cable: calls hang until their timeouts) or resets connections (calls fail at
 * once with DATABASE_IO).
 *
 * Cut for longer than the leases: A stops claiming, aborts each attempt once a
 * whole lease passed since its last renewal; the others reap A's leases and B runs
 * the tasks again; when the link comes back, every late write of A (the releases
 * of the aborted attempts) is refused with LEASE_LOST and changes nothing, A says
 * so, gives the reaped leases back (their attempts were running: the loss was A's
 * link, not the tasks'), and claims new work again by itself. The tasks allow one
 * attempt (maxAttempts 1): a reaped attempt is not counted (docs/ARCHITECTURE.md
 * rule 6), so every one of them ends completed, none failed. Cut for less than a
 * lease: nothing is aborted, reaped or run twice. A claim whose answer was lost (committed, the
 * connection reset before the answer came): its tasks are released at the next renewal, not reaped.
 */
const server = await usePostgres();

let temp: TempDir | null = null;
let proxy: CutProxy | null = null;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  await proxy?.close();
  proxy = null;
  temp?.cleanup();
  temp = null;
});

// Leases long enough that a loaded machine's slow renewal is not an outage of its own (at 2 s, a supervisor
// on a busy CI machine once counted two outages for one cut: after the restore, a renewal came back late).
const LEASE_MS = 5_000;
const TASK_MS = 20_000;

async function setUp(): Promise<{ store: Store; url: string; personasDir: string }> {
  requireBuild();
  temp = makeTempDir("roster-pg-cut-");
  const personasDir = temp.path("personas");
  mkdirSync(personasDir);
  writePersonas(personasDir, [
    // The persona's concurrency is held by the store across every claimant (docs/ARCHITECTURE.md rule 15): room for
    // A's four and B's four (each supervisor runs --concurrency 4), so new work can go to A while B runs the first four.
    { id: "work", adapter: { kind: "sleep" }, concurrency: 8, leaseMs: LEASE_MS, timeoutMs: 60_000, retry: { maxAttempts: 1, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 } },
  ]);
  const url = server.url();
  const store = await openStore({ path: url });
  await syncPersonas(store, personasDir, systemClock.now());
  return { store, url, personasDir };
}

function agentOf(task: TaskDetail, type: string, attempt?: number): string | null | undefined {
  return task.events.find((e) => e.type === type && (attempt === undefined || e.attempt === attempt))?.agentId;
}

describe.skipIf(!server.available)("postgres: a supervisor that loses its database", () => {
  it.each(["drop", "reset"] as const)("cut off past its leases (%s): stops, has every late write refused, loses nothing, and recovers by itself", async (mode) => {
    const { store, url, personasDir } = await setUp();
    try {
      proxy = await startCutProxy("127.0.0.1", Number(new URL(url).port));
      const a = await startRoster(proxy.url(url), personasDir, { args: ["--concurrency", "4", "--log-level", "info"] });
      children.push(a);
      children.push(startMcpReaper(url, 0));
      const first = (await store.tasks.enqueue({ tasks: Array.from({ length: 4 }, (_, i) => ({ persona: "work", title: `first ${i}`, payload: { ms: TASK_MS } })), now: systemClock.now() })).ids;
      const agentA = await (async () => {
        await until(async () => (await Promise.all(first.map((taskId) => store.tasks.get({ taskId })))).every((t) => t.status === "in_progress"), "A runs the first four", 20_000);
        return (await store.tasks.get({ taskId: first[0]! })).assignedAgentId!;
      })();

      proxy.cut(mode);
      const cutAt = Date.now();
      const b = await startRoster(url, personasDir, { args: ["--concurrency", "4", "--log-level", "info"] });
      children.push(b);
      // B takes the first four once their leases are reaped (A is silent for a lease).
      await until(async () => (await Promise.all(first.map((taskId) => store.tasks.get({ taskId })))).every((t) => t.assignedAgentId !== null && t.assignedAgentId !== agentA), "B runs them again", 40_000);
      // A stopped them itself once a whole lease passed without a renewal.
      await until(async () => logLines(a, "aborting attempt").filter((l) => l.reason === "db-unreachable").length === 4, "A aborts its four attempts", 20_000);
      // Cut for three leases in all.
      await new Promise((r) => setTimeout(r, Math.max(0, cutAt + 3 * LEASE_MS - Date.now())));
      proxy.restore();
      await until(async () => logLines(a, "database reachable again").length === 1, "A reaches the database again", 30_000);
      // B's four slots are busy: new work goes to A, which claims again by itself.
      const second = (await store.tasks.enqueue({ tasks: Array.from({ length: 4 }, (_, i) => ({ persona: "work", title: `second ${i}`, payload: { ms: 500 } })), now: systemClock.now() })).ids;

      const tasks = await waitForTerminal(store, [...first, ...second], 120_000);
      for (const task of tasks) {
        const types = task.events.map((e) => e.type);
        expect(task.status, `task ${task.id}: ${types.join(", ")}`).toBe("completed");
        expect(types.filter((t) => t === "task:completed"), `task ${task.id}`).toHaveLength(1);
      }
      for (const task of tasks.slice(0, 4)) {
        const types = task.events.map((e) => e.type);
        // Reaped once (A's attempt 1, not counted: rule 6), run again by B as attempt 1 of 1, and nothing of A's after the reap
        // but its give-back of the reaped lease, taken off the task's lost leases.
        expect(types.filter((t) => t === "lease:expired"), `task ${task.id}: ${types.join(", ")}`).toHaveLength(1);
        expect(task.attempts).toBe(1);
        expect(agentOf(task, "task:claimed", 1)).toBe(agentA);
        expect(task.events.filter((e) => e.type === "task:claimed").map((e) => e.attempt)).toEqual([1, 1]);
        expect(task.events.find((e) => e.type === "task:retrying")?.data).toMatchObject({ counted: false, leasesLost: 1, error: { code: "LEASE_EXPIRED" } });
        expect(agentOf(task, "task:completed")).not.toBe(agentA);
        const givenBack = task.events.find((e) => e.type === "lease:given-back");
        expect(givenBack, `task ${task.id}: ${types.join(", ")}`).toMatchObject({ agentId: agentA, data: { leasesLost: 0 } });
        const reapedAt = task.events.findIndex((e) => e.type === "lease:expired");
        // (The reap's own task:retrying row names the holder it retried from; A's own writes would be these.)
        const holderWrites = new Set(["task:started", "task:progress", "task:released", "task:completed", "task:failed"]);
        expect(task.events.slice(reapedAt + 1).filter((e) => e.agentId === agentA && holderWrites.has(e.type)), `task ${task.id}`).toEqual([]);
      }
      // A said what happened: unreachable once, back once, and each of its four late releases refused.
      expect(a.exitCode, "A is still running").toBeNull();
      expect(logLines(a, "database unreachable")).toHaveLength(1);
      const refused = logLines(a, "late write refused (LEASE_LOST)").map((l) => l.taskId);
      expect(refused.sort()).toEqual([...first].sort());
      expect(logLines(a, "reaped leases given back").flatMap((l) => l.given as number[]).sort()).toEqual([...first].sort());
      expect(tasks.slice(4).filter((t) => agentOf(t, "task:completed") === agentA).length, "A completed new work after the cut").toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it("a claim whose answer was lost: its leases are released at the next renewal, uncounted, and the tasks run at once, not after a reap", async () => {
    const { store, url, personasDir } = await setUp();
    try {
      proxy = await startCutProxy("127.0.0.1", Number(new URL(url).port));
      const ids = (await store.tasks.enqueue({ tasks: Array.from({ length: 4 }, (_, i) => ({ persona: "work", title: `lost answer ${i}` })), now: systemClock.now() })).ids;
      // A's first claim reaches the server and commits; its answer never comes back (the connection is reset).
      const lost = proxy.loseAnswer("roster_claim(");
      const a = await startRoster(proxy.url(url), personasDir, { args: ["--concurrency", "4", "--log-level", "info"] });
      children.push(a);
      children.push(startMcpReaper(url, 0));
      await lost;
      const tasks = await waitForTerminal(store, ids, 30_000);
      for (const task of tasks) {
        const types = task.events.map((e) => e.type);
        expect(task.status, `task ${task.id}: ${types.join(", ")}`).toBe("completed");
        // Claimed by the lost claim, released by A's store with the reason, claimed again as attempt 1: no reap, no lost lease.
        expect(types.slice(0, 4), `task ${task.id}`).toEqual(["task:enqueued", "task:claimed", "task:released", "task:claimed"]);
        expect(types.filter((t) => t === "lease:expired" || t === "task:retrying"), `task ${task.id}`).toEqual([]);
        expect(task.events.filter((e) => e.type === "task:claimed").map((e) => e.attempt)).toEqual([1, 1]);
        const [claimed, released] = [task.events[1]!, task.events[2]!];
        expect(released.agentId).toBe(claimed.agentId);
        expect(String((released.data as { reason?: unknown }).reason)).toMatch(/answer was lost/);
        // Within a lease of the lost claim: nobody waited for a reap.
        expect(released.at - claimed.at, `task ${task.id}`).toBeLessThan(LEASE_MS);
        expect(task.attempts).toBe(1);
      }
      expect(a.exitCode, "A is still running").toBeNull();
    } finally {
      await store.close();
    }
  });

  it("cut off for less than a lease: nothing is aborted, reaped or run twice", async () => {
    const { store, url, personasDir } = await setUp();
    try {
      proxy = await startCutProxy("127.0.0.1", Number(new URL(url).port));
      const a = await startRoster(proxy.url(url), personasDir, { args: ["--concurrency", "4", "--log-level", "info"] });
      children.push(a);
      children.push(startMcpReaper(url, 0));
      const ids = (await store.tasks.enqueue({ tasks: Array.from({ length: 4 }, (_, i) => ({ persona: "work", title: `blip ${i}`, payload: { ms: 4_000 } })), now: systemClock.now() })).ids;
      await until(async () => (await Promise.all(ids.map((taskId) => store.tasks.get({ taskId })))).every((t) => t.status === "in_progress"), "A runs all four", 20_000);
      proxy.cut();
      await new Promise((r) => setTimeout(r, 600));
      proxy.restore();
      const tasks = await waitForTerminal(store, ids, 30_000);
      for (const task of tasks) {
        const types = task.events.map((e) => e.type);
        expect(task.status, `task ${task.id}: ${types.join(", ")}`).toBe("completed");
        expect(task.attempts).toBe(1);
        expect(types.filter((t) => t === "lease:expired")).toEqual([]);
      }
      expect(logLines(a, "aborting attempt")).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
