/**
 * What the chaos run enqueues: the personas (one per built-in adapter kind, plus a
 * `shell` persona running bench/chaos/work.mjs) and seeded batches of mixed tasks
 * with dependencies between them (inside a batch by ref, and on tasks of earlier
 * batches by id).
 */
import { copyFileSync, existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { Json, TaskInput } from "../../src/store/index.js";
import { pick, randomInt, type Random } from "./random.js";

/**
 * The kinds of task the run has; each persona is named after its kind. The last
 * two come only with their faults: `hang` (a module adapter that never returns
 * and ignores its abort) and `tree` (a shell leader with two grandchildren).
 */
export const CHAOS_KINDS = ["echo", "sleep", "flaky", "fail", "planner", "shell", "hang", "tree"] as const;
export type ChaosKind = (typeof CHAOS_KINDS)[number];
/** The kinds in the seeded mix of every batch. */
const MIXED_KINDS = ["echo", "sleep", "flaky", "fail", "planner", "shell"] as const;
/** Kinds whose adapter cannot fail on its own: such a task ends `completed` unless the harness took every attempt it had. */
export const CANNOT_FAIL_KINDS: readonly ChaosKind[] = ["echo", "sleep", "shell", "tree", "planner"];
/** Every chaos persona's concurrency, held by the store across every claimant (docs/ARCHITECTURE.md rule 15). */
export const CHAOS_PERSONA_CONCURRENCY = 3;
/** The hung task's time limit, in ms: short, so its TIMEOUT comes within a cycle. */
export const HANG_TIMEOUT_MS = 1_500;

export function isChaosKind(value: string): value is ChaosKind {
  return (CHAOS_KINDS as readonly string[]).includes(value);
}

/** Timing of the personas: short leases so a killed supervisor's leases expire quickly. */
export interface PersonaTiming {
  /** Lease length of every persona, in ms (renewed every leaseMs / 3). */
  leaseMs: number;
  /** Attempts allowed, the first included, unless a task overrides it. */
  maxAttempts: number;
}

export const PERSONA_TIMING_DEFAULT: PersonaTiming = { leaseMs: 500, maxAttempts: 5 };
/** One attempt's time limit, in ms: far above any chaos task, so no attempt times out. */
const TIMEOUT_MS = 30_000;

/** Writes one persona file per kind into `dir`. `workScript` is bench/chaos/work.mjs; its executions go to `shellLog`. */
export function writeChaosPersonas(dir: string, options: { timing: PersonaTiming; workScript: string; shellLog: string; treeScript?: string; treeLog?: string; hangModule?: string }): void {
  const here = dirname(fileURLToPath(import.meta.url));
  const find = (name: string) => [join(here, name), join(here, "..", "..", "..", "bench", "chaos", name)].find((p) => existsSync(p)) ?? join(here, name);
  // A module adapter must live inside the personas folder.
  copyFileSync(options.hangModule ?? find("hang.mjs"), join(dir, "hang.mjs"));
  const adapters: Record<ChaosKind, Record<string, unknown>> = {
    echo: { kind: "echo" },
    sleep: { kind: "sleep", ms: 100 },
    flaky: { kind: "flaky", failTimes: 1 },
    fail: { kind: "fail", retryable: true },
    planner: { kind: "planner" },
    // The command is node itself, by absolute path, and the script an argument: never a shell string.
    shell: { kind: "shell", command: process.execPath, args: [options.workScript], env: { CHAOS_SHELL_LOG: options.shellLog } },
    hang: { kind: "module", path: "./hang.mjs" },
    tree: { kind: "shell", command: process.execPath, args: [options.treeScript ?? find("tree.mjs")], env: { CHAOS_TREE_LOG: options.treeLog ?? join(dir, "tree.log") } },
  };
  for (const kind of CHAOS_KINDS) {
    const front = {
      id: kind,
      name: `chaos ${kind}`,
      adapter: adapters[kind],
      concurrency: CHAOS_PERSONA_CONCURRENCY,
      leaseMs: options.timing.leaseMs,
      timeoutMs: kind === "hang" ? HANG_TIMEOUT_MS : TIMEOUT_MS,
      // One attempt for the hung task: it fails TIMEOUT, once.
      retry: { maxAttempts: kind === "hang" ? 1 : options.timing.maxAttempts, backoff: "exponential", baseMs: 20, maxMs: 200, jitter: 0.5 },
    };
    writeFileSync(join(dir, `${kind}.md`), `---\n${stringify(front)}---\nChaos suite persona: ${kind} tasks.\n`);
  }
}

/** Relative weights of the kinds in a batch. */
const WEIGHTS: Array<[(typeof MIXED_KINDS)[number], number]> = [
  ["echo", 18],
  ["sleep", 26],
  ["flaky", 16],
  ["fail", 10],
  ["planner", 8],
  ["shell", 22],
];
const WEIGHT_TOTAL = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);

function pickKind(random: Random): (typeof MIXED_KINDS)[number] {
  let r = random() * WEIGHT_TOTAL;
  for (const [kind, weight] of WEIGHTS) {
    r -= weight;
    if (r < 0) return kind;
  }
  return "echo";
}

const GOALS = [
  "ship the parser: lexer, grammar and error messages",
  "release notes: collect changes, draft and proofread",
  "fix the flaky test",
  "migrate storage: schema, backfill; switch reads and drop the old table",
  "audit logging",
];

function payloadFor(kind: (typeof MIXED_KINDS)[number], random: Random, maxAttempts: number): { payload: Json; maxAttempts?: number } {
  switch (kind) {
    case "echo":
      return { payload: { n: randomInt(random, 0, 1_000) } };
    case "sleep":
      return { payload: { ms: randomInt(random, 100, 1_200) } };
    case "shell":
      return { payload: { ms: randomInt(random, 50, 600) } };
    case "flaky": {
      // Mostly recoverable (failTimes < maxAttempts), sometimes not; some tasks override maxAttempts.
      const max = random() < 0.3 ? randomInt(random, 2, 4) : maxAttempts;
      const failTimes = random() < 0.8 ? randomInt(random, 0, max - 1) : max + randomInt(random, 0, 1);
      return { payload: { failTimes, ms: randomInt(random, 0, 400) }, ...(max === maxAttempts ? {} : { maxAttempts: max }) };
    }
    case "fail": {
      const retryable = random() < 0.5;
      return { payload: { retryable }, ...(random() < 0.5 ? { maxAttempts: randomInt(random, 1, 3) } : {}) };
    }
    case "planner":
      // Children: "sleep" implementers (150 ms each), an "echo" reviewer, and a sub-planner (this persona).
      return { payload: { goal: pick(random, GOALS), implementer: "sleep", reviewer: "echo", implementerPayload: { ms: 150 } } };
  }
}

/**
 * A batch of `size` tasks. A task depends, with some probability, on one or two
 * earlier tasks of the batch (by ref) or on a task of an earlier batch (`earlier`, by id).
 * The first batch starts with one task of each kind, so even a short run has them all.
 */
export function chaosBatch(params: { random: Random; size: number; batch: number; earlier: readonly number[]; maxAttempts: number }): TaskInput[] {
  const { random } = params;
  const tasks: TaskInput[] = [];
  for (let i = 0; i < params.size; i++) {
    const kind = params.batch === 0 && i < MIXED_KINDS.length ? MIXED_KINDS[i]! : pickKind(random);
    const { payload, maxAttempts } = payloadFor(kind, random, params.maxAttempts);
    const dependsOn: Array<string | number> = [];
    if (i > 0 && random() < 0.35) {
      const n = randomInt(random, 1, Math.min(2, i));
      for (let k = 0; k < n; k++) {
        const ref = `t${randomInt(random, 0, i - 1)}`;
        if (!dependsOn.includes(ref)) dependsOn.push(ref);
      }
    }
    if (params.earlier.length > 0 && random() < 0.1) dependsOn.push(pick(random, params.earlier));
    tasks.push({
      ref: `t${i}`,
      persona: kind,
      title: `chaos ${params.batch}.${i} ${kind}`,
      payload,
      priority: randomInt(random, -2, 2),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
      ...(dependsOn.length > 0 ? { dependsOn } : {}),
    });
  }
  return tasks;
}

/**
 * The hung task and its innocent neighbours: one `hang` task ("spin": a busy loop
 * that blocks its thread; "park": a promise that never settles, its abort
 * ignored) and `innocents` sleep tasks of the same priority, enqueued together so
 * they run on the same threads. The hung one must fail TIMEOUT, every innocent
 * complete.
 */
export function hangBatch(params: { random: Random; cycle: number; innocents: number }): TaskInput[] {
  const mode = params.random() < 0.5 ? "spin" : "park";
  const tasks: TaskInput[] = [{ persona: "hang", title: `chaos hang ${params.cycle} (${mode})`, payload: { mode }, priority: 3 }];
  for (let i = 0; i < params.innocents; i++) {
    tasks.push({ persona: "sleep", title: `chaos innocent ${params.cycle}.${i}`, payload: { ms: randomInt(params.random, 300, 1_500) }, priority: 3 });
  }
  return tasks;
}

/** Shell leaders with two grandchildren each (bench/chaos/tree.mjs), sleeping `ms`: the runner kills leaders while they run. */
export function treeBatch(params: { random: Random; cycle: number; size: number }): TaskInput[] {
  return Array.from({ length: params.size }, (_, i) => ({
    persona: "tree",
    title: `chaos tree ${params.cycle}.${i}`,
    payload: { ms: randomInt(params.random, 1_200, 2_500) },
    priority: 3,
  }));
}

/** Tasks that become due `delayMs` after enqueue, while the runner holds the write lock: echo and sleep, which cannot fail. */
export function delayedBatch(params: { random: Random; cycle: number; delays: number[] }): TaskInput[] {
  return params.delays.map((delayMs, i): TaskInput => {
    const kind = params.random() < 0.5 ? "echo" : "sleep";
    const payload: Json = kind === "echo" ? { n: i } : { ms: randomInt(params.random, 100, 400) };
    return { persona: kind, title: `chaos delayed ${params.cycle}.${i} ${kind}`, payload, delayMs, priority: 3 };
  });
}
