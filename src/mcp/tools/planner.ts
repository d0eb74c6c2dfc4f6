import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { RosterError } from "../../errors.js";
import { TASK_STATES, TERMINAL_STATES, type TaskRecord, type TaskState } from "../../store/index.js";
import type { McpContext } from "../context.js";
import { guard, ok } from "../results.js";
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, agentId, persona, taskId, taskState, tasks } from "../schemas.js";

/** Events returned by get_task unless asked otherwise. */
export const GET_TASK_EVENTS_DEFAULT = 20;

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

/**
 * Planner tools: decompose goals into tasks, watch and steer them. Every write goes
 * through the store's validated, atomic, audited methods (DESIGN rules 1, 8, 9).
 */
export function registerPlannerTools(server: McpServer, ctx: McpContext): void {
  const { store, clock } = ctx;

  server.registerTool(
    "create_tasks",
    {
      description: "Enqueue a batch of tasks atomically; dependsOn takes refs of this batch or existing ids. Returns ids and refs.",
      inputSchema: {
        tasks,
        parentId: taskId.optional().describe("parent of every task (decomposition)"),
        agentId: agentId.optional(),
      },
    },
    async (args) =>
      guard(async () => {
        const written = await store.tasks.enqueue({
          tasks: args.tasks as Parameters<typeof store.tasks.enqueue>[0]["tasks"],
          parentId: args.parentId ?? null,
          createdBy: args.agentId ?? "mcp",
          now: clock.now(),
        });
        return ok({ ids: written.ids, refs: written.refs });
      }),
  );

  server.registerTool(
    "add_dependency",
    {
      description: "Make taskId wait for dependsOn (an existing task); refused if it would close a cycle.",
      inputSchema: { taskId, dependsOn: taskId, agentId: agentId.optional() },
    },
    async (args) =>
      guard(async () => {
        const { status } = await store.tasks.addDependency({ taskId: args.taskId, dependsOn: args.dependsOn, by: args.agentId ?? "mcp", now: clock.now() });
        return ok({ taskId: args.taskId, dependsOn: args.dependsOn, status });
      }),
  );

  server.registerTool(
    "list_tasks",
    {
      description: `List tasks as compact rows by id; page with afterId = nextAfterId (limit max ${LIST_LIMIT_MAX}).`,
      inputSchema: {
        // zod's own message for a failed union is "Invalid input": say what is accepted.
        status: z.union([taskState, z.array(taskState).min(1)], { error: `must be one of ${TASK_STATES.join(", ")}, or a non-empty list of them` }).optional(),
        persona: persona.optional(),
        parentId: taskId.optional(),
        rootId: taskId.optional().describe("only this goal's subtree"),
        afterId: z.number().int().min(0).optional().describe("cursor"),
        limit: z.number().int().min(1).max(LIST_LIMIT_MAX).optional(),
      },
    },
    async (args) =>
      guard(async () => {
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
        return ok({ tasks: page.map(compactTask), nextAfterId });
      }),
  );

  server.registerTool(
    "get_task",
    {
      description: "One task in full: state, result, error, dependencies (with results), dependents, children, recent events.",
      inputSchema: { taskId, eventLimit: z.number().int().min(0).max(500).optional() },
    },
    async (args) =>
      guard(async () => {
        const detail = await store.tasks.get({ taskId: args.taskId, eventLimit: args.eventLimit ?? GET_TASK_EVENTS_DEFAULT });
        return ok({ task: detail as unknown as Record<string, unknown> });
      }),
  );

  server.registerTool(
    "cancel_task",
    {
      description: "Cancel an unfinished task; its dependents become blocked.",
      inputSchema: { taskId, reason: z.string().max(1000).optional(), agentId: agentId.optional() },
    },
    async (args) =>
      guard(async () => {
        const out = await store.tasks.cancel({ taskId: args.taskId, reason: args.reason, by: args.agentId ?? "mcp", now: clock.now() });
        return ok(out);
      }),
  );

  server.registerTool(
    "retry_task",
    {
      description: "Run a failed or cancelled task again with fresh attempts; unblocks its dependents.",
      inputSchema: { taskId, agentId: agentId.optional() },
    },
    async (args) =>
      guard(async () => {
        const out = await store.tasks.retry({ taskId: args.taskId, by: args.agentId ?? "mcp", now: clock.now() });
        return ok({ taskId: args.taskId, ...out });
      }),
  );

  server.registerTool(
    "get_progress",
    {
      description: "Task counts per persona and state, for the whole queue or one goal's subtree (rootId).",
      inputSchema: { rootId: taskId.optional() },
    },
    async (args) =>
      guard(async () => {
        if (args.rootId !== undefined && (await store.tasks.list({ rootId: args.rootId, limit: 1 })).length === 0) {
          throw new RosterError("TASK_NOT_FOUND", `rootId: task ${args.rootId} does not exist`, { details: { field: "rootId" } });
        }
        const counts = await store.tasks.counts(args.rootId === undefined ? {} : { rootId: args.rootId });
        const totals: Partial<Record<TaskState, number>> = {};
        let total = 0;
        let finished = 0;
        for (const states of Object.values(counts)) {
          for (const [state, n] of Object.entries(states) as Array<[TaskState, number]>) {
            totals[state] = (totals[state] ?? 0) + n;
            total += n;
            if (TERMINAL_STATES.includes(state)) finished += n;
          }
        }
        return ok({ counts, totals, total, done: total > 0 && finished === total });
      }),
  );
}
