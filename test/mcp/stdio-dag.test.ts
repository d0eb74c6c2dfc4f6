import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { loadConfig } from "../../src/config.js";
import { silentLogger } from "../../src/logging/logger.js";
import { loadPersonaDir } from "../../src/personas/load.js";
import { openStore, type Store } from "../../src/store/index.js";
import { Supervisor } from "../../src/supervisor/supervisor.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { call, doubleHolds, requireBuild, spawnMcpClient, writePersona, type SpawnedClient } from "./helpers.js";
import { syncPersonaFolder } from "../helpers/personas.js";

/**
 * One worker agent's loop, as the README tells agents to run it: claim (waiting
 * up to waitMs), heartbeat, report progress, complete; until the goal is done.
 * `firstClaim` lets the test hold both workers' first tasks at once.
 */
async function workerLoop(options: {
  worker: Client;
  planner: Client;
  name: string;
  rootId: number;
  firstClaim: (taskId: number) => Promise<void>;
}): Promise<number[]> {
  const { worker, planner, name, rootId } = options;
  const { agentId } = await call(worker, "register_agent", { name, persona: "builder" });
  const done: number[] = [];
  let first = true;
  for (;;) {
    const claim = await call(worker, "claim_task", { agentId, persona: "builder", waitMs: 500 });
    if (claim.task === null) {
      if ((await call(planner, "get_progress", { rootId })).done) return done;
      continue;
    }
    const { task, leaseToken } = claim;
    if (first) {
      first = false;
      await options.firstClaim(task.id);
    }
    const beat = await call(worker, "heartbeat", { agentId });
    expect(beat.lost).toEqual([]);
    await call(worker, "report_progress", { taskId: task.id, leaseToken, fraction: 0.5, message: `${name} halfway` });
    await call(worker, "complete_task", {
      taskId: task.id,
      leaseToken,
      result: { by: name, title: task.title, inputs: task.dependencies.map((d: { id: number }) => d.id) },
    });
    done.push(task.id);
  }
}

describe("roster mcp over stdio: a planner and two workers on one database", () => {
  let temp: TempDir;
  let store: Store;
  const clients: SpawnedClient[] = [];

  beforeEach(async () => {
    requireBuild();
    temp = makeTempDir("roster-mcp-dag-");
    const personasDir = temp.path("personas");
    writePersona(personasDir, { id: "builder", adapter: "echo", leaseMs: 30_000 });
    writePersona(personasDir, { id: "checker", adapter: "echo", leaseMs: 30_000 });
    store = await openStore({ path: temp.path("roster.db") });
    await syncPersonaFolder(store, personasDir);
  });

  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    await store.close();
    temp.cleanup();
  });

  it("completes a DAG with two worker processes and the supervisor, no task ever held by two agents", async () => {
    const db = temp.path("roster.db");
    const spawned = await Promise.all([
      spawnMcpClient({ db, profile: "planner", name: "planner" }),
      spawnMcpClient({ db, profile: "worker", name: "worker-1" }),
      spawnMcpClient({ db, profile: "worker", name: "worker-2" }),
    ]);
    clients.push(...spawned);
    const [planner, w1, w2] = spawned.map((s) => s.client) as [Client, Client, Client];

    // The planner decomposes a goal: spec → 4 implementations → 4 checks (supervisor) → release; docs alongside.
    const goal = await call(planner, "create_tasks", { tasks: [{ persona: "builder", title: "Goal: ship the feature" }] });
    const rootId = goal.ids[0] as number;
    const impls = [1, 2, 3, 4];
    const plan = await call(planner, "create_tasks", {
      parentId: rootId,
      tasks: [
        { ref: "spec", persona: "builder", title: "Write the spec" },
        ...impls.map((i) => ({ ref: `impl-${i}`, persona: "builder", title: `Implement part ${i}`, dependsOn: ["spec"] })),
        ...impls.map((i) => ({ ref: `check-${i}`, persona: "checker", title: `Check part ${i}`, dependsOn: [`impl-${i}`] })),
        { ref: "docs", persona: "builder", title: "Write the docs" },
        { ref: "release", persona: "builder", title: "Release", dependsOn: [...impls.map((i) => `check-${i}`), "docs"] },
      ],
    });
    expect(plan.ids).toHaveLength(11);

    // The supervisor runs the persona with an in-process adapter (checker: echo) on
    // worker threads; builder tasks are left to the MCP workers.
    const config = loadConfig(
      { dbPath: db, personasDir: temp.path("personas"), logLevel: "silent", threads: 1, concurrency: 4, pollIntervalMs: 20, reapIntervalMs: 200 },
      {},
    );
    const checker = loadPersonaDir(temp.path("personas")).filter((p) => p.id === "checker");
    const supervisor = new Supervisor({ store, personas: checker, config, logger: silentLogger(), agentName: "test supervisor" });
    await supervisor.start();
    // Both workers hold their first task at the same time before going on.
    const firsts: number[] = [];
    let release!: () => void;
    const bothClaimed = new Promise<void>((resolve) => (release = resolve));
    const firstClaim = async (taskId: number): Promise<void> => {
      firsts.push(taskId);
      if (firsts.length === 2) release();
      await bothClaimed;
    };
    const [done1, done2] = await Promise.all([
      workerLoop({ worker: w1, planner, name: "worker-1", rootId, firstClaim }),
      workerLoop({ worker: w2, planner, name: "worker-2", rootId, firstClaim }),
    ]);
    await supervisor.stop("test over");

    expect(new Set(firsts).size).toBe(2);
    expect(done1.length).toBeGreaterThan(0);
    expect(done2.length).toBeGreaterThan(0);
    expect(new Set([...done1, ...done2]).size).toBe(done1.length + done2.length);
    const progress = await call(planner, "get_progress", { rootId });
    expect(progress).toMatchObject({ done: true, total: 12, totals: { completed: 12 } });

    const all = await store.tasks.list({ rootId, limit: 0 });
    expect(all.map((t) => t.status)).toEqual(Array(12).fill("completed"));
    for (const task of all) {
      const events = await store.tasks.events({ taskId: task.id });
      expect(doubleHolds(task.id, events)).toEqual([]);
      expect(events.filter((e) => e.type === "task:completed")).toHaveLength(1);
    }
    const checks = all.filter((t) => t.persona === "checker");
    expect(supervisor.agentId).not.toBe("");
    expect(checks.map((t) => t.assignedAgentId)).toEqual(Array(4).fill(supervisor.agentId));
    // What the supervisor's echo adapter produced reached the release task through its dependencies.
    const releaseTask = await store.tasks.get({ taskId: plan.refs.release });
    expect(releaseTask.dependencies.map((d) => d.result)).toContainEqual({
      echo: null,
      reviewed: [{ id: plan.refs["impl-1"], title: "Implement part 1", status: "completed" }],
    });
  });
});
