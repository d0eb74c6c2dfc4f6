import { expect, it } from "vitest";
import type { ErrorCode } from "../../../src/errors.js";
import type { ClaimedTask } from "../../../src/store/index.js";
import { claimOne, enqueueOne, expectRefused, type Ctx, type GetCtx } from "./support.js";

type Case = [name: string, tasks: unknown, code: ErrorCode, patterns: Array<string | RegExp>];

const circular: Record<string, unknown> = { a: 1 };
circular.self = circular;

/** Enqueue input refused whole: [what, tasks, code, what the message must name]. */
const ENQUEUE_CASES: Case[] = [
  ["an unknown persona", [{ persona: "worker", title: "ok" }, { ref: "x", persona: "nobody", title: "x" }], "PERSONA_NOT_FOUND", ['tasks[1] (ref "x").persona', "nobody"]],
  [
    "a dependency cycle",
    [
      { ref: "a", persona: "worker", title: "a", dependsOn: ["c"] },
      { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] },
      { ref: "c", persona: "worker", title: "c", dependsOn: ["b"] },
    ],
    "DEPENDENCY_CYCLE",
    ['tasks[0] (ref "a").dependsOn', "a -> c -> b -> a"],
  ],
  ["a self-dependency", [{ ref: "me", persona: "worker", title: "me", dependsOn: ["me"] }], "SELF_DEPENDENCY", ['tasks[0] (ref "me").dependsOn']],
  ["an unknown dependency ref", [{ persona: "worker", title: "a", dependsOn: ["missing"] }], "DEPENDENCY_NOT_FOUND", ["tasks[0].dependsOn", '"missing"']],
  ["an unknown dependency id", [{ persona: "worker", title: "a", dependsOn: [999_999] }], "DEPENDENCY_NOT_FOUND", ["tasks[0].dependsOn", "999999"]],
  ["a dependency listed twice", [{ ref: "a", persona: "worker", title: "a" }, { persona: "worker", title: "b", dependsOn: ["a", "a"] }], "VALIDATION", ["tasks[1].dependsOn", "twice"]],
  ["a duplicate ref", [{ ref: "a", persona: "worker", title: "a" }, { ref: "a", persona: "worker", title: "b" }], "DUPLICATE_REF", ['tasks[1] (ref "a").ref', "tasks[0]"]],
  ["an empty title", [{ persona: "worker", title: "   " }], "VALIDATION", ["tasks[0].title"]],
  ["a missing persona field", [{ title: "x" }], "VALIDATION", ["tasks[0].persona"]],
  ["a function in the payload", [{ persona: "worker", title: "a", payload: { run: () => 1 } }], "VALIDATION", ["tasks[0].payload.run", "function"]],
  ["a BigInt in the payload", [{ persona: "worker", title: "a", payload: { n: 10n } }], "VALIDATION", ["tasks[0].payload.n", "bigint"]],
  ["a circular payload", [{ persona: "worker", title: "a", payload: circular }], "VALIDATION", ["tasks[0].payload.self", "circular"]],
  ["NaN in the payload", [{ persona: "worker", title: "a", payload: [1, Number.NaN] }], "VALIDATION", ["tasks[0].payload[1]", "NaN"]],
  ["a payload over the size limit", [{ persona: "worker", title: "a", payload: "x".repeat(1024 * 1024 + 1) }], "PAYLOAD_TOO_LARGE", ["tasks[0].payload", "over the limit"]],
  ["a payload approval deadline not ahead", [{ persona: "worker", title: "a", payload: { approval: { deadlineMs: -5 } } }], "VALIDATION", ["tasks[0].payload.approval.deadlineMs", ">=1"]],
  ["a payload approval default the gate does not know", [{ persona: "worker", title: "a", payload: { approval: { deadlineMs: 1000, default: "maybe" } } }], "VALIDATION", ["tasks[0].payload.approval.default", '"approve"|"reject"']],
  ["a priority out of range", [{ persona: "worker", title: "a", priority: -1001 }], "VALIDATION", ["tasks[0].priority"]],
  ["a non-integer maxAttempts", [{ persona: "worker", title: "a", maxAttempts: 1.5 }], "VALIDATION", ["tasks[0].maxAttempts"]],
  [
    "maxAttempts given twice (top level and policy)",
    [{ persona: "worker", title: "a", maxAttempts: 3, policy: { maxAttempts: 5 } }],
    "VALIDATION",
    ["tasks[0].maxAttempts", "given twice", "policy.maxAttempts (5)"],
  ],
  ["a jitter over 1 in a policy override", [{ persona: "worker", title: "a", policy: { jitter: 1.5 } }], "VALIDATION", ["tasks[0].policy.jitter"]],
  ["a negative delay", [{ persona: "worker", title: "a", delayMs: -5 }], "VALIDATION", ["tasks[0].delayMs"]],
  ["an unknown field", [{ persona: "worker", title: "a", colour: "red" }], "VALIDATION", ["tasks[0]", '"colour"']],
  ["a ref with spaces", [{ ref: "two words", persona: "worker", title: "a" }], "VALIDATION", ['tasks[0] (ref "two words").ref']],
  ["an empty batch", [], "VALIDATION", ["tasks", "at least one"]],
  ["tasks that are not an array", { persona: "worker", title: "a" }, "VALIDATION", ["tasks", "array"]],
  ["a task that is not an object", ["do it"], "VALIDATION", ["tasks[0]"]],
];

/** Other writes: a set-up step (not compared), then the call that must be refused. */
interface WriteCase {
  name: string;
  setup?: (ctx: Ctx) => Promise<ClaimedTask>;
  run: (ctx: Ctx, task: ClaimedTask | undefined) => Promise<unknown>;
  code: ErrorCode;
  patterns: string[];
}

const claimed = (ctx: Ctx) => claimOne(ctx);

const WRITE_CASES: WriteCase[] = [
  {
    name: "a progress fraction out of range",
    setup: claimed,
    run: (ctx, t) => ctx.store.tasks.progressIfLeased({ taskId: t!.id, leaseToken: t!.leaseToken, fraction: 1.5, now: ctx.clock.now() }),
    code: "VALIDATION",
    patterns: ["fraction", "1.5"],
  },
  {
    name: "a result that is not JSON-serialisable",
    setup: claimed,
    run: (ctx, t) => ctx.store.tasks.completeIfLeased({ taskId: t!.id, leaseToken: t!.leaseToken, result: { big: 1n } as never, now: ctx.clock.now() }),
    code: "VALIDATION",
    patterns: ["result.big"],
  },
  {
    name: "an invalid child task in a completion",
    setup: claimed,
    run: (ctx, t) =>
      ctx.store.tasks.completeIfLeased({ taskId: t!.id, leaseToken: t!.leaseToken, children: [{ persona: "worker", title: "" }], now: ctx.clock.now() }),
    code: "VALIDATION",
    patterns: ["tasks[0].title"],
  },
  {
    name: "a claim limit of zero",
    run: (ctx) => ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 0, now: ctx.clock.now() }),
    code: "VALIDATION",
    patterns: ["limit"],
  },
  {
    name: "a claim lease that is not a positive integer",
    run: (ctx) => ctx.store.tasks.claim({ persona: "worker", agentId: "a", leaseMs: -5, now: ctx.clock.now() }),
    code: "VALIDATION",
    patterns: ["leaseMs", "-5"],
  },
  {
    name: "an agent with an empty name",
    run: (ctx) => ctx.store.agents.register({ name: " ", kind: "cli", heartbeatTimeoutMs: 1_000, now: ctx.clock.now() }),
    code: "VALIDATION",
    patterns: ["name"],
  },
  {
    name: "an agent with a zero heartbeat timeout",
    run: (ctx) => ctx.store.agents.register({ name: "a", kind: "cli", heartbeatTimeoutMs: 0, now: ctx.clock.now() }),
    code: "VALIDATION",
    patterns: ["heartbeatTimeoutMs"],
  },
  {
    name: "an agent of an unknown persona",
    run: (ctx) => ctx.store.agents.register({ name: "a", kind: "cli", personaId: "ghost", heartbeatTimeoutMs: 1_000, now: ctx.clock.now() }),
    code: "PERSONA_NOT_FOUND",
    patterns: ["persona", "ghost"],
  },
  {
    name: "deregistering an unknown agent",
    run: (ctx) => ctx.store.agents.deregister({ agentId: "ghost", now: ctx.clock.now() }),
    code: "AGENT_NOT_FOUND",
    patterns: ["agentId", "ghost"],
  },
  {
    name: "a list filter with an unknown status",
    run: (ctx) => ctx.store.tasks.list({ status: "sleeping" as never }),
    code: "VALIDATION",
    patterns: ["status", "sleeping"],
  },
];

/** docs/ARCHITECTURE.md rule 11: bad input gets a typed error naming what and where, and writes nothing. */
export function badInputRules(get: GetCtx): void {
  for (const [name, tasks, code, patterns] of ENQUEUE_CASES) {
    it(`rule 11: enqueue refuses ${name} with ${code}, naming the field, and writes nothing`, async () => {
      const ctx = get();
      await enqueueOne(ctx, { title: "already there" });
      await expectRefused(ctx, () => ctx.store.tasks.enqueue({ tasks: tasks as never, now: ctx.clock.now() }), code, patterns);
    });
  }

  for (const c of WRITE_CASES) {
    it(`rule 11: ${c.name} is refused with ${c.code}, naming the field, and writes nothing`, async () => {
      const ctx = get();
      const id = await enqueueOne(ctx, { title: "already there" });
      const task = c.setup === undefined ? undefined : await c.setup(ctx);
      await expectRefused(ctx, () => c.run(ctx, task), c.code, c.patterns, [id]);
    });
  }
}
