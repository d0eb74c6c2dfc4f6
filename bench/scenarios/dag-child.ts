/**
 * The dag scenario's measures, run in a child process each (see dag.ts).
 */
import { join } from "node:path";
import { BENCH_PERSONA, openBenchStore } from "./support/store.js";
import type { TaskInput } from "../../src/store/index.js";

/** Deterministic pseudo-random numbers (LCG), so every run enqueues the same graph. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * A batch of `tasks` tasks with 2 × `tasks` edges: the first two depend on two tasks
 * that already exist, every other one on two distinct tasks among the 100 before it.
 */
export function dagBatch(tasks: number, existing: [number, number]): TaskInput[] {
  const random = lcg(42);
  const batch: TaskInput[] = [];
  for (let i = 0; i < tasks; i++) {
    let dependsOn: Array<string | number>;
    if (i === 0) dependsOn = [existing[0], existing[1]];
    else if (i === 1) dependsOn = ["t0", existing[0]];
    else {
      const window = Math.min(i, 100);
      const a = i - 1 - Math.floor(random() * window);
      let b = i - 1 - Math.floor(random() * window);
      if (b === a) b = a === i - 1 ? i - 2 : a + 1;
      dependsOn = [`t${a}`, `t${b}`];
    }
    batch.push({ ref: `t${i}`, persona: BENCH_PERSONA, title: `dag task ${i}`, payload: { i }, dependsOn });
  }
  return batch;
}

export interface DagBatchRun {
  tasks: number;
  edges: number;
  enqueueMs: number;
}

export async function measureDagBatch(args: { dir: string; tasks: number }): Promise<DagBatchRun> {
  const store = await openBenchStore({ path: join(args.dir, "dag.db") });
  try {
    const roots = await store.tasks.enqueue({
      tasks: [
        { persona: BENCH_PERSONA, title: "existing a" },
        { persona: BENCH_PERSONA, title: "existing b" },
      ],
      now: Date.now(),
    });
    const batch = dagBatch(args.tasks, [roots.ids[0]!, roots.ids[1]!]);
    const edges = batch.reduce((n, t) => n + (t.dependsOn?.length ?? 0), 0);
    const t0 = performance.now();
    const result = await store.tasks.enqueue({ tasks: batch, now: Date.now() });
    const enqueueMs = performance.now() - t0;
    if (result.ids.length !== args.tasks) throw new Error(`dag batch wrote ${result.ids.length} of ${args.tasks} tasks`);
    return { tasks: args.tasks, edges, enqueueMs };
  } finally {
    await store.close();
  }
}

export interface FanOutRun {
  dependents: number;
  /** The completing transaction: after it commits every dependent is ready. */
  completeMs: number;
  /** From the complete call until the store's task:completed notification (after the commit). */
  notifiedMs: number;
  readyAfter: number;
}

export async function measureFanOut(args: { dir: string; dependents: number }): Promise<FanOutRun> {
  const store = await openBenchStore({ path: join(args.dir, "fanout.db") });
  try {
    const tasks: TaskInput[] = [{ ref: "root", persona: BENCH_PERSONA, title: "root", priority: 10 }];
    for (let i = 0; i < args.dependents; i++) tasks.push({ persona: BENCH_PERSONA, title: `dependent ${i}`, dependsOn: ["root"] });
    await store.tasks.enqueue({ tasks, now: Date.now() });
    const agent = await store.agents.register({ name: "bench", kind: "cli", heartbeatTimeoutMs: 60_000, now: Date.now() });
    const [root] = await store.tasks.claim({ persona: BENCH_PERSONA, agentId: agent.id, limit: 1, now: Date.now() });
    if (root === undefined || root.title !== "root") throw new Error("fan-out: the root task was not the one claimed");
    let notifiedAt = 0;
    store.events.on("task:completed", () => {
      notifiedAt ||= performance.now();
    });
    const t0 = performance.now();
    const done = await store.tasks.completeIfLeased({ taskId: root.id, leaseToken: root.leaseToken, result: null, now: Date.now() });
    const completeMs = performance.now() - t0;
    if (!done.ok) throw new Error("fan-out: completing the root lost its lease");
    const counts = await store.tasks.counts();
    const readyAfter = counts[BENCH_PERSONA]?.pending ?? 0;
    if (readyAfter !== args.dependents) throw new Error(`fan-out: ${readyAfter} of ${args.dependents} dependents ready after the root completed`);
    return { dependents: args.dependents, completeMs, notifiedMs: notifiedAt === 0 ? Number.NaN : notifiedAt - t0, readyAfter };
  } finally {
    await store.close();
  }
}
