import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { LOST_LEASES_MIN } from "../../src/store/lost-leases.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { ROSTER_BIN, requireBuild } from "../mcp/helpers.js";
import { cleanEnv, startMcpReaper } from "../helpers/roster-process.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { copyFixture, writePersonas } from "../supervisor/helpers.js";

/**
 * A poison task (docs/ARCHITECTURE.md rule 6): its attempt kills the process that holds
 * it, as a native crash would. Reaped attempts are not counted, so such a task is stopped
 * by its own bound on lost leases instead: with maxAttempts 1, the third supervisor it
 * kills is the last (LOST_LEASES_MIN), the task ends failed with LEASE_EXPIRED and its
 * dependent blocked. A killed holder never gives a lease back. Real `roster start`
 * processes on SQLite, started again each time the task killed one, and a `roster mcp`
 * reaping every 100 ms.
 */
let temp: TempDir | null = null;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  temp?.cleanup();
  temp = null;
});

/** `roster start` until it exits (the poison task kills it): its exit signal. */
function runSupervisor(dbPath: string, personasDir: string): Promise<NodeJS.Signals | null> {
  const child = spawn(process.execPath, [ROSTER_BIN, "start", "--db", dbPath, "--personas", personasDir, "--threads", "1", "--metrics-port", "0", "--log-level", "warn"], {
    env: cleanEnv(),
    stdio: ["ignore", "ignore", "ignore"],
  });
  children.push(child);
  return new Promise((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
}

describe.skipIf(process.platform === "win32")("a task that kills its holder every time", () => {
  it("is stopped by its lost-lease bound: failed (LEASE_EXPIRED) after the third supervisor it kills, its dependent blocked", async () => {
    requireBuild();
    temp = makeTempDir("roster-poison-");
    const personasDir = temp.path("personas");
    mkdirSync(personasDir);
    copyFixture(personasDir, "adapter-kill-holder.mjs");
    const once = { maxAttempts: 1, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 };
    writePersonas(personasDir, [
      { id: "poison", adapter: { kind: "module", path: "./adapter-kill-holder.mjs" }, concurrency: 1, leaseMs: 1_000, timeoutMs: 60_000, retry: once },
      { id: "after", adapter: { kind: "echo" }, retry: once },
    ]);
    const dbPath = temp.path("roster.db");
    const store: Store = await openStore({ path: dbPath });
    try {
      await syncPersonas(store, personasDir, Date.now());
      const [poison, after] = (
        await store.tasks.enqueue({
          tasks: [
            { ref: "p", persona: "poison", title: "crashes its holder" },
            { persona: "after", title: "needs the poison task", dependsOn: ["p"] },
          ],
          now: Date.now(),
        })
      ).ids as [number, number];
      children.push(startMcpReaper(dbPath, 0));
      const killed: Array<NodeJS.Signals | null> = [];
      for (let run = 0; run < LOST_LEASES_MIN + 2; run++) {
        const task = await store.tasks.get({ taskId: poison });
        if (task.status === "failed") break;
        killed.push(await runSupervisor(dbPath, personasDir));
        // The reaper takes the dead holder's lease back before the next supervisor starts.
        const deadline = Date.now() + 20_000;
        while (!["pending", "failed"].includes((await store.tasks.get({ taskId: poison })).status) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      }
      const p = await store.tasks.get({ taskId: poison, eventLimit: 1_000 });
      const a = await store.tasks.get({ taskId: after });
      const trail = `poison task: ${p.events.map((e) => e.type).join(", ")}`;
      expect(killed, trail).toEqual(Array.from({ length: LOST_LEASES_MIN }, () => "SIGKILL"));
      expect(p, trail).toMatchObject({ status: "failed", attempts: 0, error: { code: "LEASE_EXPIRED" } });
      expect(p.events.filter((e) => e.type === "task:claimed").map((e) => e.attempt), trail).toEqual(Array.from({ length: LOST_LEASES_MIN }, () => 1));
      expect(p.events.filter((e) => e.type === "lease:expired").map((e) => (e.data as { leasesLost?: number }).leasesLost), trail).toEqual(Array.from({ length: LOST_LEASES_MIN }, (_, i) => i + 1));
      expect(p.events.filter((e) => e.type === "lease:given-back"), trail).toEqual([]);
      expect(a.status).toBe("blocked");
    } finally {
      await store.close();
    }
  }, 120_000);
});
