import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { tempStore } from "../metrics/helpers.js";

// Child processes run the built CLI (npm test builds first).
const BIN = join(import.meta.dirname, "..", "..", "dist", "src", "cli", "bin.js");

function roster(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, ...env, ROSTER_DB: "" }, timeout: 20_000 });
}

describe("roster status", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function workload() {
    const clock = new ManualClock();
    const t = await tempStore();
    cleanups.push(t.cleanup);
    const { store } = t;
    await store.tasks.enqueue({ tasks: [1, 2, 3].map((i) => ({ persona: "coder", title: `c${i}` })), now: clock.now() });
    await store.tasks.enqueue({ tasks: [{ persona: "planner", title: "plan it" }], now: clock.now() });
    const [a, b] = await store.tasks.claim({ persona: "coder", agentId: "sup", limit: 2, now: clock.now() });
    await store.tasks.completeIfLeased({ taskId: a!.id, leaseToken: a!.leaseToken, now: clock.now() });
    await store.tasks.startIfLeased({ taskId: b!.id, leaseToken: b!.leaseToken, now: clock.now() });
    await store.tasks.progressIfLeased({ taskId: b!.id, leaseToken: b!.leaseToken, fraction: 0.75, message: "compiling", now: clock.now() });
    return { ...t, running: b! };
  }

  it("prints JSON whose counts map persona to state to number, with the running tasks' progress", async () => {
    const { store, path, running } = await workload();
    const res = roster(["status", "--json", "--db", path]);
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);
    const json = JSON.parse(res.stdout) as { counts: unknown; running: Array<Record<string, unknown>> };
    expect(json.counts).toEqual(await store.tasks.counts());
    expect(json.counts).toEqual({ coder: { completed: 1, in_progress: 1, pending: 1 }, planner: { pending: 1 } });
    expect(json.running).toHaveLength(1);
    expect(json.running[0]).toMatchObject({ id: running.id, persona: "coder", progress: 0.75, progressMessage: "compiling" });
  });

  it("prints each persona's done / total with a bar and each running task's fraction and message", async () => {
    const { path } = await workload();
    const res = roster(["status", "--db", path]);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^coder +\[[█░]{20}\] 1\/3 done {2}1 completed, 1 running, 1 pending$/m);
    expect(res.stdout).toMatch(/^planner +\[░{20}\] 0\/1 done/m);
    expect(res.stdout).toMatch(/#\d+ coder attempt 1 +\[[█░]{10}\] +75% +c2: compiling/);
  });

  it("redraws with --watch until Ctrl-C, then exits 0", async () => {
    const { path } = await workload();
    const child = spawn(process.execPath, [BIN, "status", "--watch", "--json", "--interval", "100", "--db", path], { env: { ...process.env, ROSTER_DB: "" } });
    let out = "";
    const frames = new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.split("\n").filter((l) => l.startsWith("{")).length >= 3) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await frames;
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    const lines = out.trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) expect(JSON.parse(line)).toHaveProperty("counts.coder.completed", 1);
  });

  it("rejects an --interval below 100 ms naming the flag, with exit 2", async () => {
    const { path } = await workload();
    const res = roster(["status", "--watch", "--interval", "5", "--db", path]);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("--interval: must be an integer from 100 to 86400000");
    expect(res.stdout).toBe("");
  });

  it("refuses a database that does not exist instead of creating one", () => {
    const res = roster(["status", "--db", join(import.meta.dirname, "no-such-dir", "none.db")]);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("no roster database there");
  });
});
