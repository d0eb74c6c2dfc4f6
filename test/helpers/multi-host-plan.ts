import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { randomInt, type Random } from "../../bench/chaos/random.js";
import type { TaskInput } from "../../src/store/index.js";
import type { Expected } from "./multi-host-checks.js";

/**
 * The multi-host run's work (issue 19, acceptance): waves of tasks with
 * dependencies, a mix of chains and fan-ins, some links of each served by MCP
 * workers (an `external` persona no supervisor claims), so dependencies cross
 * between supervisors on three hosts and two MCP workers; and in each wave one
 * task whose adapter always fails, with two dependents behind it, so "terminal as
 * its policy says" covers failed and blocked too. Later waves hang some of their
 * chains off completed-to-be tasks of earlier waves.
 */

/** Lease of the supervisors' personas, in ms: the cut lasts three of them. */
export const HOST_LEASE_MS = 4_000;
/** MCP tasks' lease, in ms (a worker completes at once; heartbeats are not needed within it). */
export const MCP_LEASE_MS = 15_000;

/** How many step tasks may be leased at once, across every host. */
export const STEP_CONCURRENCY = 48;

/** step (sleep 0–30 ms, on the supervisors), mcp (external: the MCP workers), doomed (fails every attempt). */
export function writeHostPersonas(dir: string): void {
  const retry = (maxAttempts: number) => ({ maxAttempts, backoff: "fixed", baseMs: 100, maxMs: 100, jitter: 0 });
  const personas = [
    { id: "step", name: "step", adapter: { kind: "sleep", ms: 10 }, concurrency: STEP_CONCURRENCY, leaseMs: HOST_LEASE_MS, timeoutMs: 60_000, retry: retry(8) },
    { id: "mcp", name: "mcp", adapter: { kind: "echo" }, external: true, concurrency: 8, leaseMs: MCP_LEASE_MS, timeoutMs: 60_000, retry: retry(8) },
    { id: "doomed", name: "doomed", adapter: { kind: "fail" }, concurrency: 4, leaseMs: HOST_LEASE_MS, timeoutMs: 60_000, retry: retry(2) },
  ];
  for (const p of personas) writeFileSync(join(dir, `${p.id}.md`), `---\n${stringify(p)}---\nMulti-host persona ${p.id}.\n`);
}

export interface Wave {
  tasks: TaskInput[];
  /** By index in `tasks`. */
  expected: Expected[];
}

/**
 * `size` tasks for wave `wave`. `anchors` are ids of earlier tasks that end completed:
 * some chain heads depend on one. Returns the tasks and what each must end as.
 */
export function hostWave(p: { random: Random; wave: number; size: number; anchors: readonly number[] }): Wave {
  const tasks: TaskInput[] = [];
  const expected: Expected[] = [];
  const add = (task: TaskInput, end: Expected) => {
    tasks.push(task);
    expected.push(end);
  };
  const ref = (n: number) => `w${p.wave}-${n}`;
  // One doomed task and its two dependents first: failed, then blocked, blocked.
  add({ ref: ref(0), persona: "doomed", title: `wave ${p.wave} doomed`, payload: { retryable: true } }, "failed");
  add({ ref: ref(1), persona: "step", title: `wave ${p.wave} behind doomed`, dependsOn: [ref(0)], payload: { ms: 0 } }, "blocked");
  add({ ref: ref(2), persona: "step", title: `wave ${p.wave} behind doomed, twice`, dependsOn: [ref(1)], payload: { ms: 0 } }, "blocked");
  let unit = 0;
  while (tasks.length < p.size) {
    const room = p.size - tasks.length;
    unit++;
    const step = (title: string, dependsOn: Array<string | number>, mcp: boolean): TaskInput => ({
      ref: ref(tasks.length),
      persona: mcp ? "mcp" : "step",
      title,
      dependsOn,
      payload: mcp ? { unit } : { ms: randomInt(p.random, 0, 30) },
    });
    if (p.random() < 0.6 || room < 3) {
      // A chain of 5–25, in a third of them the third link an MCP task; its head sometimes waits on an earlier wave.
      const length = Math.min(room, randomInt(p.random, 5, 25));
      const mcpLink = p.random() < 0.33 ? 2 : -1;
      let previous: Array<string | number> = p.anchors.length > 0 && p.random() < 0.3 ? [p.anchors[randomInt(p.random, 0, p.anchors.length - 1)]!] : [];
      for (let i = 0; i < length; i++) {
        const task = step(`wave ${p.wave} chain ${unit} link ${i}`, previous, i === mcpLink);
        add(task, "completed");
        previous = [task.ref!];
      }
    } else {
      // A fan-in: 5–40 leaves (one in twenty an MCP task), then one join on them all.
      const width = Math.min(room - 1, randomInt(p.random, 5, 40));
      const leaves: string[] = [];
      for (let i = 0; i < width; i++) {
        const task = step(`wave ${p.wave} fan ${unit} leaf ${i}`, [], p.random() < 0.05);
        add(task, "completed");
        leaves.push(task.ref!);
      }
      add(step(`wave ${p.wave} fan ${unit} join`, leaves, false), "completed");
    }
  }
  return { tasks, expected };
}
