import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store, type TaskDetail } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { requireBuild, until } from "../mcp/helpers.js";
import { logLines, startMcpReaper, startRoster, waitForTerminal } from "../helpers/roster-process.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { writePersonas } from "../supervisor/helpers.js";

/**
 * A supervisor frozen for longer than its leases (SIGSTOP, then SIGCONT: a paused VM,
 * a laptop lid) on SQLite, its tasks allowed one attempt (docs/ARCHITECTURE.md rule 6
 * and 12, "Liveness"). While it is frozen a `roster mcp` reaps its silent leases and a
 * second supervisor runs the tasks again. The reaped attempts are not counted, so the
 * tasks end completed, not failed; the frozen supervisor, resumed, has its late writes
 * refused (LEASE_LOST) and gives the reaped leases back (its attempts were running:
 * the loss was its freeze, not the tasks').
 */
let temp: TempDir | null = null;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null) {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
    }
  }
  temp?.cleanup();
  temp = null;
});

const LEASE_MS = 1_000;
const TASK_MS = 6_000;

const agentOf = (task: TaskDetail, type: string): string | null | undefined => task.events.find((e) => e.type === type)?.agentId;

describe.skipIf(process.platform === "win32")("a supervisor frozen past its leases (SQLite)", () => {
  it("has its leases reaped uncounted: maxAttempts 1 tasks complete elsewhere, its late writes are refused and it gives the leases back", async () => {
    requireBuild();
    temp = makeTempDir("roster-frozen-");
    const personasDir = temp.path("personas");
    mkdirSync(personasDir);
    writePersonas(personasDir, [
      { id: "work", adapter: { kind: "sleep" }, concurrency: 2, leaseMs: LEASE_MS, timeoutMs: 60_000, retry: { maxAttempts: 1, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 } },
    ]);
    const dbPath = temp.path("roster.db");
    const store: Store = await openStore({ path: dbPath });
    try {
      await syncPersonas(store, personasDir, Date.now());
      const a = await startRoster(dbPath, personasDir, { args: ["--concurrency", "2", "--log-level", "info"] });
      children.push(a);
      const ids = (await store.tasks.enqueue({ tasks: [0, 1].map((i) => ({ persona: "work", title: `frozen ${i}`, payload: { ms: TASK_MS } })), now: Date.now() })).ids;
      await until(async () => (await Promise.all(ids.map((taskId) => store.tasks.get({ taskId })))).every((t) => t.status === "in_progress"), "A runs both", 20_000);
      const agentA = (await store.tasks.get({ taskId: ids[0]! })).assignedAgentId!;

      a.kill("SIGSTOP");
      const frozenAt = Date.now();
      children.push(startMcpReaper(dbPath, 0));
      const b = await startRoster(dbPath, personasDir, { args: ["--concurrency", "2", "--log-level", "info"] });
      children.push(b);
      await until(async () => (await Promise.all(ids.map((taskId) => store.tasks.get({ taskId })))).every((t) => t.assignedAgentId !== null && t.assignedAgentId !== agentA), "B runs both again", 20_000);
      // Frozen for three leases at least, then resumed while B's attempts still run.
      await new Promise((r) => setTimeout(r, Math.max(0, frozenAt + 3 * LEASE_MS - Date.now())));
      a.kill("SIGCONT");

      const tasks = await waitForTerminal(store, ids, 60_000);
      for (const task of tasks) {
        const types = task.events.map((e) => e.type);
        const trail = `task ${task.id}: ${types.join(", ")}`;
        expect(task.status, trail).toBe("completed");
        expect(task.attempts, trail).toBe(1);
        expect(types.filter((t) => t === "task:completed"), trail).toHaveLength(1);
        expect(agentOf(task, "task:completed"), trail).not.toBe(agentA);
        // A's attempt 1 reaped, not counted; B's claim is attempt 1 again.
        expect(task.events.filter((e) => e.type === "task:claimed").map((e) => [e.agentId === agentA ? "A" : "other", e.attempt]), trail).toEqual([
          ["A", 1],
          ["other", 1],
        ]);
        expect(task.events.find((e) => e.type === "lease:expired"), trail).toMatchObject({ agentId: agentA, attempt: 1 });
        expect(task.events.find((e) => e.type === "task:retrying")?.data, trail).toMatchObject({ counted: false, leasesLost: 1, error: { code: "LEASE_EXPIRED" } });
        // Nothing of A's attempt after the reap but its give-back.
        const reapedAt = task.events.findIndex((e) => e.type === "lease:expired");
        const aAfter = task.events.slice(reapedAt + 2).filter((e) => e.agentId === agentA);
        expect(aAfter.map((e) => e.type), trail).toEqual(["lease:given-back"]);
      }
      expect(a.exitCode, "A is still running").toBeNull();
      expect(logLines(a, "reaped leases given back").flatMap((l) => l.given as number[]).sort()).toEqual([...ids].sort());
    } finally {
      await store.close();
    }
  }, 90_000);
});
