import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { performance } from "node:perf_hooks";
import { z } from "zod";
import { RosterError } from "../../errors.js";
import type { ClaimedTask, TaskInput } from "../../store/index.js";
import type { McpContext } from "../context.js";
import { guard, leaseLost, ok } from "../results.js";
import { HEARTBEAT_TIMEOUT_MS_DEFAULT, agentId, childTasks, errorMessage, leaseToken, persona, result, retryable, taskId, waitMs } from "../schemas.js";

/** An agent renews its leases every leaseMs / HEARTBEAT_DIVISOR (DESIGN: leaseMs >= 3 × heartbeat interval). */
export const HEARTBEAT_DIVISOR = 3;

/** What claim_task hands the agent: the task, its dependencies' results, and when to heartbeat. */
export function claimedView(task: ClaimedTask): Record<string, unknown> {
  return {
    id: task.id,
    title: task.title,
    description: task.description,
    persona: task.persona,
    payload: task.payload,
    parentId: task.parentId,
    priority: task.priority,
    attempt: task.attempt,
    maxAttempts: task.maxAttempts,
    leaseMs: task.leaseMs,
    leaseExpiresAt: task.leaseExpiresAt,
    heartbeatEveryMs: Math.floor(task.leaseMs / HEARTBEAT_DIVISOR),
    timeoutMs: task.timeoutMs,
    dependencies: task.dependencies,
  };
}

/**
 * Worker tools: the loop an external agent runs (register → claim → heartbeat every
 * leaseMs/3 → progress → complete | fail | release). Every write after the claim is
 * fenced by (taskId, leaseToken); a lost lease answers LEASE_LOST and writes nothing.
 */
export function registerWorkerTools(server: McpServer, ctx: McpContext): void {
  const { store, clock, leases } = ctx;

  /**
   * A claim is a sign of life: it heartbeats the agent (one statement, which also
   * renews its leases), so an agent that only waits in claim_task is not expired,
   * and an expired one comes back. Unknown or deregistered agents are refused.
   */
  const touchAgent = async (id: string): Promise<void> => {
    const beat = await store.agents.heartbeat({ agentId: id, now: clock.now() });
    if (beat.agentActive) return;
    const agent = await store.agents.get({ agentId: id });
    if (agent === null) {
      throw new RosterError("AGENT_NOT_FOUND", `agentId: no agent "${id}"; call register_agent first`, { details: { field: "agentId" } });
    }
    throw new RosterError("INVALID_STATE", `agentId: agent "${id}" is ${agent.status}; call register_agent again (pass agentId to keep it)`, {
      details: { field: "agentId", status: agent.status },
    });
  };

  const requirePersona = async (id: string): Promise<void> => {
    const record = await store.personas.get({ id });
    if (record === null || record.retiredAt !== null) {
      const what = record === null ? "unknown" : "retired";
      throw new RosterError("PERSONA_NOT_FOUND", `persona: ${what} persona "${id}" (see list_personas)`, { details: { field: "persona" } });
    }
  };

  server.registerTool(
    "register_agent",
    {
      description: "Register this agent (or resume one by agentId); returns the agentId the other worker tools take.",
      inputSchema: {
        name: z.string().min(1).max(200).optional(),
        persona: persona.optional(),
        heartbeatTimeoutMs: z.number().int().min(1_000).max(24 * 3_600_000).optional().describe(`default ${HEARTBEAT_TIMEOUT_MS_DEFAULT}`),
        agentId: agentId.optional().describe("resume this agent"),
      },
    },
    async (args) =>
      guard(async () => {
        const agent = await store.agents.register({
          ...(args.agentId !== undefined ? { id: args.agentId } : {}),
          name: args.name ?? "mcp agent",
          kind: "mcp",
          personaId: args.persona ?? null,
          heartbeatTimeoutMs: args.heartbeatTimeoutMs ?? HEARTBEAT_TIMEOUT_MS_DEFAULT,
          now: clock.now(),
        });
        return ok({ agentId: agent.id, heartbeatTimeoutMs: agent.heartbeatTimeoutMs });
      }),
  );

  server.registerTool(
    "claim_task",
    {
      description: "Lease the next ready task of a persona, waiting up to waitMs; returns { task, leaseToken } or { task: null }.",
      inputSchema: { agentId, persona, waitMs: waitMs.optional() },
    },
    async (args, extra) =>
      guard(async () => {
        await requirePersona(args.persona);
        await touchAgent(args.agentId);
        const deadline = performance.now() + (args.waitMs ?? 0);
        for (;;) {
          // A read first: waiting agents must not take the write lock every time they look.
          const ready = await store.tasks.listAvailable({ persona: args.persona, now: clock.now(), limit: 1 });
          if (ready.length > 0) {
            const [task] = await store.tasks.claim({ persona: args.persona, agentId: args.agentId, limit: 1, now: clock.now() });
            if (task !== undefined) {
              leases.add(args.agentId, { taskId: task.id, leaseToken: task.leaseToken });
              // The agent starts at once; in_progress says so to status readers.
              const started = await store.tasks.startIfLeased({ taskId: task.id, leaseToken: task.leaseToken, now: clock.now() });
              if (!started.ok) {
                leases.remove({ taskId: task.id, leaseToken: task.leaseToken });
                continue;
              }
              return ok({ task: claimedView(task), leaseToken: task.leaseToken });
            }
          }
          const remaining = deadline - performance.now();
          if (remaining <= 0 || extra.signal.aborted) return ok({ task: null });
          const nextRunAt = await store.tasks.nextRunAt({ persona: args.persona, now: clock.now() });
          const untilDue = nextRunAt === null ? remaining : Math.max(1, nextRunAt - clock.now());
          await ctx.changes.wait(Math.min(remaining, untilDue), extra.signal);
        }
      }),
  );

  server.registerTool(
    "heartbeat",
    {
      description: "Renew every lease this agent holds; call every leaseMs/3. Lists leases lost (stop those tasks).",
      inputSchema: { agentId },
    },
    async (args) =>
      guard(async () => {
        if ((await store.agents.get({ agentId: args.agentId })) === null) {
          throw new RosterError("AGENT_NOT_FOUND", `agentId: no agent "${args.agentId}"; call register_agent first`, { details: { field: "agentId" } });
        }
        const beat = await store.agents.heartbeat({ agentId: args.agentId, now: clock.now() });
        const lost = leases.settleHeartbeat(args.agentId, beat.renewed);
        return ok({ agentActive: beat.agentActive, renewed: beat.renewed.map((r) => r.taskId), lost: lost.map((r) => r.taskId) });
      }),
  );

  server.registerTool(
    "report_progress",
    {
      description: "Record progress (fraction 0..1, optional message) on a task you hold.",
      inputSchema: { taskId, leaseToken, fraction: z.number().min(0).max(1), message: z.string().max(1000).optional() },
    },
    async (args) =>
      guard(async () => {
        const out = await store.tasks.progressIfLeased({
          taskId: args.taskId,
          leaseToken: args.leaseToken,
          fraction: args.fraction,
          ...(args.message !== undefined ? { message: args.message } : {}),
          now: clock.now(),
        });
        if (!out.ok) return await lost(args);
        return ok({ taskId: args.taskId, fraction: args.fraction });
      }),
  );

  server.registerTool(
    "complete_task",
    {
      description: "Complete a task you hold with its result, optionally enqueueing child tasks in the same transaction.",
      inputSchema: { taskId, leaseToken, result: result.optional(), tasks: childTasks.optional() },
    },
    async (args) =>
      guard(async () => {
        const out = await store.tasks.completeIfLeased({
          taskId: args.taskId,
          leaseToken: args.leaseToken,
          ...(args.result !== undefined ? { result: args.result as never } : {}),
          ...(args.tasks !== undefined ? { children: args.tasks as unknown as TaskInput[] } : {}),
          now: clock.now(),
        });
        if (!out.ok) return await lost(args);
        leases.remove(args);
        return ok({ taskId: args.taskId, status: "completed", childIds: out.childIds, childRefs: out.childRefs });
      }),
  );

  server.registerTool(
    "fail_task",
    {
      description: "Fail a task you hold; retried with backoff while attempts remain unless retryable is false.",
      inputSchema: { taskId, leaseToken, error: errorMessage, retryable: retryable.optional() },
    },
    async (args) =>
      guard(async () => {
        const out = await store.tasks.failIfLeased({
          taskId: args.taskId,
          leaseToken: args.leaseToken,
          error: { message: args.error, code: "ADAPTER_FAILED" },
          retryable: args.retryable ?? true,
          now: clock.now(),
        });
        if (!out.ok) return await lost(args);
        leases.remove(args);
        return ok(
          out.outcome === "retrying"
            ? { taskId: args.taskId, status: "pending", attempt: out.attempt, runAt: out.runAt }
            : { taskId: args.taskId, status: "failed", attempt: out.attempt, blocked: out.blocked },
        );
      }),
  );

  server.registerTool(
    "release_task",
    {
      description: "Give a task you hold back to the queue without counting the attempt.",
      inputSchema: { taskId, leaseToken, reason: z.string().max(1000).optional(), delayMs: z.number().int().min(0).max(3_600_000).optional() },
    },
    async (args) =>
      guard(async () => {
        const out = await store.tasks.releaseIfLeased({
          taskId: args.taskId,
          leaseToken: args.leaseToken,
          ...(args.reason !== undefined ? { reason: args.reason } : {}),
          ...(args.delayMs !== undefined ? { delayMs: args.delayMs } : {}),
          now: clock.now(),
        });
        if (!out.ok) return await lost(args);
        leases.remove(args);
        return ok({ taskId: args.taskId, status: "pending" });
      }),
  );

  /**
   * A fenced write was refused. A task id that names no task is the caller's
   * mistake, not a lost lease: say TASK_NOT_FOUND (get throws it) so the agent
   * does not go looking for a lease it never had.
   */
  async function lost(ref: { taskId: number; leaseToken: string }) {
    leases.remove(ref);
    await store.tasks.get({ taskId: ref.taskId, eventLimit: 0 });
    return leaseLost(ref.taskId);
  }
}
