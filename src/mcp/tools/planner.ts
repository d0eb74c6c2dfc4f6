import { z } from "zod";
import { RosterError } from "../../errors.js";
import { TASK_STATES, type TaskRecord, type TaskState } from "../../store/index.js";
import type { McpContext } from "../context.js";
import { ok } from "../results.js";
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, agentId, persona, taskId, taskInput, taskState, tasks } from "../schemas.js";
import type { McpSession } from "../session.js";
import type { ToolTable } from "../tool.js";

/** Events returned by get_task unless asked otherwise. */
export const GET_TASK_EVENTS_DEFAULT = 20;
/** Task ids get_progress lists per state needing attention; the count is always whole. */
export const ATTENTION_IDS_MAX = 20;

/** States in which roster will still move a task on its own (a worker will run it, or its dependencies will). */
export const ACTIVE_STATES: readonly TaskState[] = ["waiting", "pending", "claimed", "in_progress"];
/** States a worker moves on its own (ready, due later, or running). */
const MOVING_STATES: readonly TaskState[] = ["pending", "claimed", "in_progress"];
/** States only a person moves (docs/humans-and-schedules.md). */
const PARKED_STATES: readonly TaskState[] = ["awaiting_approval", "awaiting_input"];

/** A list_tasks row: enough to decide what to look at next, nothing more. */
export function compactTask(task: TaskRecord): Record<string, unknown> {
  return {
    id: task.id,
    title: task.title,
    persona: task.persona,
    status: task.status,
    attempts: task.attempts,
    ...(task.parentId !== null ? { parentId: task.parentId } : {}),
    ...(task.dependsOn.length > 0 ? { dependsOn: task.dependsOn } : {}),
    ...(task.progress !== null && task.status !== "completed" ? { progress: task.progress } : {}),
    ...(task.assignedAgentId !== null && (task.status === "claimed" || task.status === "in_progress") ? { agentId: task.assignedAgentId } : {}),
  };
}

const WRITE = { destructiveHint: false } as const;
const READ = { readOnlyHint: true } as const;
const anyObject = z.looseObject({});
const byAgent = agentId.describe("optional: the session's own agent (recorded as who did it)");

/**
 * Planner tools: decompose goals into tasks, watch and steer them. Every write goes
 * through the store's validated, atomic, audited methods (docs/ARCHITECTURE.md rules 1, 8, 9),
 * recorded as done by the session's agent when it registered.
 */
export function registerPlannerTools(tools: ToolTable, ctx: McpContext, session: McpSession): void {
  const { store, clock } = ctx;

  /** The session's agent when it has one (a planner need not register); a given agentId must be it. */
  const by = async (given: string | undefined): Promise<string> => (given === undefined ? session.by() : session.require(given));

  tools.define({
    name: "create_goal",
    description: "Create a goal and its plan atomically: tasks become the goal's children and the goal runs after all of them.",
    input: {
      goal: taskInput.describe("the goal task (its persona reviews or sums up the plan)"),
      tasks,
      parentId: taskId.optional().describe("parent of the goal"),
      agentId: byAgent.optional(),
    },
    output: { goalId: z.number(), ids: z.array(z.number()), refs: z.record(z.string(), z.number()) },
    annotations: WRITE,
    handler: async (args) => {
      const out = await store.tasks.enqueueGoal({
        goal: args.goal as never,
        tasks: args.tasks as never,
        parentId: args.parentId ?? null,
        createdBy: await by(args.agentId),
        now: clock.now(),
      });
      return ok({ goalId: out.goalId, ids: out.ids, refs: out.refs });
    },
  });

  tools.define({
    name: "create_tasks",
    description: "Enqueue tasks atomically (all or none); dependsOn takes refs of this call or existing ids. Returns ids and refs.",
    input: {
      tasks,
      parentId: taskId.optional().describe("parent of every task (the goal they serve)"),
      agentId: byAgent.optional(),
    },
    output: { ids: z.array(z.number()), refs: z.record(z.string(), z.number()) },
    annotations: WRITE,
    handler: async (args) => {
      const written = await store.tasks.enqueue({
        tasks: args.tasks as never,
        parentId: args.parentId ?? null,
        createdBy: await by(args.agentId),
        now: clock.now(),
      });
      return ok({ ids: written.ids, refs: written.refs });
    },
  });

  tools.define({
    name: "add_dependency",
    description: "Make taskId wait for dependsOn (an existing task); refused if it would close a cycle.",
    input: { taskId, dependsOn: taskId.describe("the task it must wait for"), agentId: byAgent.optional() },
    output: { taskId: z.number(), dependsOn: z.number(), status: z.string() },
    annotations: { ...WRITE, idempotentHint: true },
    handler: async (args) => {
      const { status } = await store.tasks.addDependency({ taskId: args.taskId, dependsOn: args.dependsOn, by: await by(args.agentId), now: clock.now() });
      return ok({ taskId: args.taskId, dependsOn: args.dependsOn, status });
    },
  });

  tools.define({
    name: "list_tasks",
    description: `List tasks as compact rows by id; page with afterId = nextAfterId (limit max ${LIST_LIMIT_MAX}).`,
    input: {
      // zod's own message for a failed union is "Invalid input": say what is accepted.
      status: z
        .union([taskState, z.array(taskState).min(1)], { error: `must be one of ${TASK_STATES.join(", ")}, or a non-empty list of them` })
        .optional()
        .describe("only these states"),
      persona: persona.optional(),
      parentId: taskId.optional().describe("only children of this task"),
      rootId: taskId.optional().describe("only this goal's subtree"),
      afterId: z.number().int().min(0).optional().describe("cursor: nextAfterId of the previous page"),
      limit: z.number().int().min(1).max(LIST_LIMIT_MAX).optional().describe(`rows per page (default ${LIST_LIMIT_DEFAULT})`),
    },
    output: { tasks: z.array(anyObject), nextAfterId: z.number().nullable() },
    annotations: READ,
    handler: async (args) => {
      const limit = args.limit ?? LIST_LIMIT_DEFAULT;
      // One row more than asked tells whether another page exists.
      const rows = await store.tasks.list({
        ...(args.status !== undefined ? { status: args.status } : {}),
        ...(args.persona !== undefined ? { persona: args.persona } : {}),
        ...(args.parentId !== undefined ? { parentId: args.parentId } : {}),
        ...(args.rootId !== undefined ? { rootId: args.rootId } : {}),
        afterId: args.afterId ?? 0,
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const nextAfterId = rows.length > limit ? page[page.length - 1]!.id : null;
      return ok({ tasks: page.map(compactTask), nextAfterId }, () => `${page.length} tasks; next page afterId ${String(nextAfterId)}`);
    },
  });

  tools.define({
    name: "get_task",
    description: "One task in full: state, result, error, dependencies (with results), dependents, children, recent events.",
    input: { taskId, eventLimit: z.number().int().min(0).max(500).optional().describe(`newest events to include (default ${GET_TASK_EVENTS_DEFAULT})`) },
    output: { task: anyObject },
    annotations: READ,
    handler: async (args) => {
      const detail = await store.tasks.get({ taskId: args.taskId, eventLimit: args.eventLimit ?? GET_TASK_EVENTS_DEFAULT });
      return ok({ task: detail as unknown as Record<string, unknown> }, () => `task ${detail.id} "${detail.title}" is ${detail.status}`);
    },
  });

  tools.define({
    name: "cancel_task",
    description: "Cancel an unfinished task; its dependents become blocked. Holders get LEASE_LOST (reason cancelled).",
    input: { taskId, reason: z.string().max(1000).optional().describe("why, for the trail"), agentId: byAgent.optional() },
    output: { cancelled: z.array(z.number()), blocked: z.array(z.number()) },
    annotations: { destructiveHint: true },
    handler: async (args) => ok(await store.tasks.cancel({ taskId: args.taskId, reason: args.reason, by: await by(args.agentId), now: clock.now() })),
  });

  tools.define({
    name: "retry_task",
    description: "Run a failed or cancelled task again with fresh attempts; unblocks its dependents.",
    input: { taskId, agentId: byAgent.optional() },
    output: { taskId: z.number(), status: z.string(), unblocked: z.array(z.number()) },
    annotations: WRITE,
    handler: async (args) => {
      const out = await store.tasks.retry({ taskId: args.taskId, by: await by(args.agentId), now: clock.now() });
      return ok({ taskId: args.taskId, ...out });
    },
  });

  tools.define({
    name: "get_progress",
    description: "Counts per persona and state, and cost. settled: nothing left that runs by itself (stop polling); needsAttention: failed, blocked, parked.",
    input: { rootId: taskId.optional().describe("one goal's subtree (default: every task)") },
    output: { totals: anyObject, total: z.number(), done: z.boolean(), settled: z.boolean(), needsAttention: anyObject, cost: anyObject },
    annotations: READ,
    handler: async (args) => {
      if (args.rootId !== undefined && (await store.tasks.list({ rootId: args.rootId, limit: 1 })).length === 0) {
        throw new RosterError("TASK_NOT_FOUND", `rootId: task ${args.rootId} does not exist`, { details: { field: "rootId" } });
      }
      const counts = await store.tasks.counts(args.rootId === undefined ? {} : { rootId: args.rootId });
      const totals: Partial<Record<TaskState, number>> = {};
      let total = 0;
      for (const states of Object.values(counts)) {
        for (const [state, n] of Object.entries(states) as Array<[TaskState, number]>) {
          totals[state] = (totals[state] ?? 0) + n;
          total += n;
        }
      }
      const count = (states: readonly TaskState[]): number => states.reduce((sum, s) => sum + (totals[s] ?? 0), 0);
      // Anything neither moving, completed nor cancelled needs a person or a planner:
      // failed, blocked, and parked states (awaiting approval or input).
      const attentionStates = (Object.keys(totals) as TaskState[]).filter((s) => !ACTIVE_STATES.includes(s) && s !== "completed" && s !== "cancelled");
      const needsAttention: Record<string, { count: number; ids: number[] }> = {};
      for (const state of attentionStates) {
        const rows = await store.tasks.list({ status: state, ...(args.rootId !== undefined ? { rootId: args.rootId } : {}), limit: ATTENTION_IDS_MAX });
        needsAttention[state] = { count: totals[state] ?? 0, ids: rows.map((r) => r.id) };
      }
      // Nothing runs by itself: nothing pending or running, and what waits, waits on a task parked for a
      // person (with nothing pending or running, a waiting task's unmet dependencies end in parked ones).
      const parked = count(PARKED_STATES);
      const settled = count(ACTIVE_STATES) === 0 || (count(MOVING_STATES) === 0 && parked > 0);
      // What the attempts spent (docs/economics.md); unpriced: attempts whose cost is unknown.
      const spent = await store.economics.total(args.rootId === undefined ? {} : { rootId: args.rootId });
      return ok({
        counts,
        totals,
        total,
        // Every task completed: the goal succeeded.
        done: total > 0 && (totals.completed ?? 0) === total,
        settled,
        needsAttention,
        cost: { usd: spent.costUsd, tokens: spent.tokens, inputTokens: spent.inputTokens, outputTokens: spent.outputTokens, attempts: spent.attempts, unpriced: spent.unpriced },
      });
    },
  });
}
