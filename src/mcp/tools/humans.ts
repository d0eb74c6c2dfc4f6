import { z } from "zod";
import type { McpContext } from "../context.js";
import { leaseLost, ok } from "../results.js";
import { leaseToken, taskId } from "../schemas.js";
import type { McpSession } from "../session.js";
import type { ToolTable } from "../tool.js";

/**
 * Humans in the loop over MCP (docs/humans-and-schedules.md). A worker parks the
 * task it holds on a question (request_input: the store's humans.ask, the same
 * path as a module adapter's ctx.askHuman: the lease is released, the attempt is
 * not counted, and a later claim carries the answer in task.inputs). A planner, or
 * a person's client, decides approvals, answers questions, and asks why a task is
 * not running (the reasons of `roster why`). Every decision is recorded as made by
 * the session's agent (`mcp` when it did not register).
 */

/** Longest question, note, reason or answer, in characters: the store's limit (it refuses longer ones too). */
export const HUMAN_TEXT_CHARS_MAX = 64 * 1024;

const humanText = (what: string) => z.string().min(1).max(HUMAN_TEXT_CHARS_MAX).describe(what);

/** request_input, in the worker profile (kept short: its tools/list is sent to every worker's model). */
export function registerInputRequestTool(tools: ToolTable, ctx: McpContext, session: McpSession): void {
  const { store, clock, leases } = ctx;
  tools.define({
    name: "request_input",
    description: "Ask a person: parks the task, uncounted, until answered; a later claim gets task.inputs.",
    input: { taskId, leaseToken, question: humanText("what to ask") },
    output: {},
    annotations: { destructiveHint: false },
    handler: async (args) => {
      const out = await store.humans.askIfLeased({ taskId: args.taskId, leaseToken: args.leaseToken, question: args.question, now: clock.now() });
      leases.remove(args);
      if (!out.ok) return leaseLost(args.taskId, await store.tasks.leaseLoss({ taskId: args.taskId, agentId: session.agent }));
      return ok({ taskId: args.taskId, status: "awaiting_input" });
    },
  });
}

/** approve_task, reject_task, answer_task and why, in the planner profile. */
export function registerHumanTools(tools: ToolTable, ctx: McpContext, session: McpSession): void {
  const { store, clock } = ctx;

  tools.define({
    name: "approve_task",
    description: "Approve a task awaiting_approval: it completes with {approved, note, by} as its result and its dependents run.",
    input: { taskId, note: humanText("why, or what to do; dependents receive it").optional() },
    output: { taskId: z.number(), status: z.string(), readied: z.array(z.number()) },
    annotations: { destructiveHint: false },
    handler: async (args) => {
      const out = await store.humans.approve({ taskId: args.taskId, by: session.by(), now: clock.now(), ...(args.note !== undefined ? { note: args.note } : {}) });
      return ok({ taskId: args.taskId, status: "completed", readied: out.readied });
    },
  });

  tools.define({
    name: "reject_task",
    description: "Reject a task awaiting_approval: it fails (REJECTED, not retried) and its dependents become blocked.",
    input: { taskId, reason: humanText("why, for the trail and the error") },
    output: { taskId: z.number(), status: z.string(), blocked: z.array(z.number()) },
    annotations: { destructiveHint: true },
    handler: async (args) => {
      const out = await store.humans.reject({ taskId: args.taskId, reason: args.reason, by: session.by(), now: clock.now() });
      return ok({ taskId: args.taskId, status: "failed", blocked: out.blocked });
    },
  });

  tools.define({
    name: "answer_task",
    description: "Answer the question of a task awaiting_input: it returns to pending, and its next attempt gets the answer.",
    input: { taskId, answer: humanText("the answer") },
    output: { taskId: z.number(), status: z.string() },
    annotations: { destructiveHint: false },
    handler: async (args) => {
      const out = await store.humans.answer({ taskId: args.taskId, answer: args.answer, by: session.by(), now: clock.now() });
      return ok({ taskId: args.taskId, status: out.status });
    },
  });

  tools.define({
    name: "why",
    description: "Why a task is not running: every reason with a code (dependencies_unmet, awaiting_approval, awaiting_input, blocked_by ...).",
    input: { taskId },
    output: { taskId: z.number(), status: z.string(), reasons: z.array(z.looseObject({})) },
    annotations: { readOnlyHint: true },
    handler: async (args) => {
      const report = await store.why.explain({ taskId: args.taskId, now: clock.now() });
      return ok(report as unknown as Record<string, unknown>, () => `task ${report.taskId} is ${report.status}: ${report.reasons.map((r) => r.code).join(", ")}`);
    },
  });
}
