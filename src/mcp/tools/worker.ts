import { performance } from "node:perf_hooks";
import { z } from "zod";
import { RosterError, toErrorObject } from "../../errors.js";
import type { AttemptUsage, ClaimedTask, TaskInput } from "../../store/index.js";
import { claimedView } from "../claim-view.js";
import type { McpContext } from "../context.js";
import { budgetCrossing, budgetExhaustedError, spendOf } from "../../policy/budget.js";
import { validateUsage } from "../../store/usage-values.js";
import { renewAgentLeases } from "../give-back.js";
import { leaseLost, ok, toolError } from "../results.js";
import { HEARTBEAT_TIMEOUT_MS_DEFAULT, agentId, childTasks, errorMessage, leaseToken, persona, result, retryable, taskId, waitMs } from "../schemas.js";
import type { McpSession } from "../session.js";
import type { ToolTable } from "../tool.js";

/** read_task's page of a result, in JSON characters: default and most. */
export const READ_PAGE_CHARS_DEFAULT = 16_000;
export const READ_PAGE_CHARS_MAX = 64_000;
/** Trail events read_task returns. */
export const READ_TRAIL_EVENTS = 20;
/** Claims answered lately whose cancel, arriving after the answer, gives them back (claim_task). */
const ANSWERED_CLAIMS_KEPT = 16;
/** Ready tasks a peek lists. */
export const PEEK_LIMIT = 10;

/**
 * What the attempt spent (docs/economics.md: {model, inputTokens, outputTokens, cacheReadTokens,
 * cacheWriteTokens, reasoningTokens, costUsd, turns}); the store checks it, and a bad one is refused
 * naming the known fields, with nothing written. Described in two words: tools/list goes to every worker.
 */
const usage = z.unknown().describe("tokens, cost");
/** report_progress's usage: the same object, as the attempt's running total (each report replaces the last). */
const usageSoFar = z.unknown().describe("total so far");

/** Throws PERSONA_NOT_FOUND unless the persona exists and is not retired. */
export async function personaInService(ctx: McpContext, id: string): Promise<void> {
  const record = await ctx.store.personas.get({ id });
  if (record === null || record.retiredAt !== null) {
    const what = record === null ? "unknown" : "retired";
    throw new RosterError("PERSONA_NOT_FOUND", `persona: ${what} persona "${id}" (see list_personas)`, { details: { field: "persona" } });
  }
}

/** register_agent, in every profile: planners register too, so their writes name them. */
export function registerAgentTool(tools: ToolTable, session: McpSession, requirePersona: (id: string) => Promise<void>): void {
  tools.define({
    name: "register_agent",
    description: "Optional: name your agent, or resume an ended one.",
    input: {
      name: z.string().min(1).max(200).optional().describe("display name"),
      agentId: agentId.optional().describe("resume this ended agent"),
    },
    // Accepted, not listed (worker tools/list budget); docs/mcp.md describes them.
    legacy: {
      persona: persona.optional(),
      heartbeatTimeoutMs: z.number().int().min(1_000).max(24 * 3_600_000).optional().describe(`ms of silence before expiry (default ${HEARTBEAT_TIMEOUT_MS_DEFAULT})`),
    },
    output: {},
    annotations: { ...WRITE, idempotentHint: true },
    handler: async (input) => {
      const args = input as typeof input & { persona?: string; heartbeatTimeoutMs?: number };
      if (args.persona !== undefined) await requirePersona(args.persona);
      return ok(await session.register({ name: args.name, persona: args.persona, heartbeatTimeoutMs: args.heartbeatTimeoutMs, resume: args.agentId }));
    },
  });

}

const WRITE = { destructiveHint: false } as const;
const READ = { readOnlyHint: true } as const;
const anyObject = z.looseObject({});

/**
 * Worker tools: the loop an external agent runs (claim → heartbeat every
 * heartbeatEveryMs → complete | fail | release). The session's agent is minted by
 * the server on first use and bound to the session. Every write after the claim
 * is fenced by (taskId, leaseToken); a lost lease answers LEASE_LOST with why.
 */
export function registerWorkerTools(tools: ToolTable, ctx: McpContext, session: McpSession): void {
  const { store, clock, leases } = ctx;

  const requirePersona = (id: string): Promise<void> => personaInService(ctx, id);

  /**
   * A claim is a sign of life: it heartbeats the agent (which also renews its
   * leases), so an agent that only waits in claim_task is not expired, and an
   * expired one comes back.
   */
  const liveAgent = async (given: string | undefined): Promise<string> => {
    const id = await session.require(given);
    const beat = await store.agents.heartbeat({ agentId: id, now: clock.now() }).catch((error: unknown) => {
      leases.markOwed(id); // alive, but not renewed: a reap meanwhile is given back (../give-back.ts)
      throw error;
    });
    if (!beat.agentActive) throw new RosterError("INVALID_STATE", `agentId: agent "${id}" was deregistered`, { details: { field: "agentId" } });
    return id;
  };

  /** A fenced write was refused: why (TASK_NOT_FOUND for an id that names no task). */
  const lost = async (ref: { taskId: number; leaseToken: string }) => {
    leases.remove(ref);
    const loss = await store.tasks.leaseLoss({ taskId: ref.taskId, agentId: session.agent });
    // The agent outlived a lease the reaper took (since claimed again, perhaps): it gives it back (fenced by its token; ../give-back.ts).
    if (session.agent !== null && (loss.reason === "expired" || loss.reason === "taken")) {
      await ctx.returns.give(session.agent, [{ taskId: ref.taskId, leaseToken: ref.leaseToken }]);
    }
    return leaseLost(ref.taskId, loss);
  };

  registerAgentTool(tools, session, requirePersona);

  // Claims answered lately, by request id: a cancel that comes after its claim was answered
  // means the client dropped the answer, and with it the lease token (connectMcp).
  const answered = new Map<string | number, { taskId: number; leaseToken: string }>();
  session.onCancel = (requestId) => {
    const ref = answered.get(requestId);
    if (ref === undefined) return;
    answered.delete(requestId);
    void giveUpClaim(ref).catch((error: unknown) => ctx.logger.warn({ taskId: ref.taskId, err: error }, "giving back a cancelled claim failed; its lease will run out"));
  };

  tools.define({
    name: "claim_task",
    description: "Lease the next ready task of persona, waiting up to waitMs; task null if none.",
    input: { persona, waitMs: waitMs.optional() },
    legacy: { agentId: agentId.optional() },
    output: { task: anyObject.nullable(), leaseToken: z.string().optional() },
    annotations: WRITE,
    handler: async (args, extra) => {
      await requirePersona(args.persona);
      const agent = await liveAgent((args as { agentId?: string }).agentId);
      const deadline = performance.now() + (args.waitMs ?? 0);
      for (;;) {
        // A cancelled call claims nothing: the SDK sends no answer to it, so the agent would
        // never learn the lease token of a task claimed now.
        if (extra.signal.aborted) return ok({ task: null });
        const task = await claimOnce(args.persona, agent);
        if (task !== null) {
          leases.add(agent, { taskId: task.id, leaseToken: task.leaseToken });
          // The agent starts at once; in_progress says so to status readers.
          const started = await store.tasks.startIfLeased({ taskId: task.id, leaseToken: task.leaseToken, now: clock.now() });
          if (started.ok) {
            const [lineage] = await store.tasks.lineage({ taskIds: [task.id] });
            // Cancelled while the claim was being written: the lease goes back, uncounted.
            if (extra.signal.aborted) return await giveUpClaim({ taskId: task.id, leaseToken: task.leaseToken });
            answered.set(extra.requestId, { taskId: task.id, leaseToken: task.leaseToken });
            if (answered.size > ANSWERED_CLAIMS_KEPT) answered.delete(answered.keys().next().value!);
            const view = claimedView(task, lineage, ctx.resultCutChars);
            return ok({ task: view, leaseToken: task.leaseToken }, () => `claimed task ${task.id} "${task.title}" (attempt ${task.attempt}/${task.maxAttempts}), leaseToken ${task.leaseToken}`);
          }
          leases.remove({ taskId: task.id, leaseToken: task.leaseToken });
          continue;
        }
        const remaining = deadline - performance.now();
        if (remaining <= 0 || extra.signal.aborted) return ok({ task: null });
        const nextRunAt = await store.tasks.nextRunAt({ persona: args.persona, now: clock.now() });
        const untilDue = nextRunAt === null ? remaining : Math.max(1, nextRunAt - clock.now());
        await ctx.changes.wait(Math.min(remaining, untilDue), extra.signal);
      }
    },
  });

  /**
   * Releases a lease whose claim_task call the agent cancelled (so it never saw the token):
   * uncounted, as release_task (docs/ARCHITECTURE.md rule 12), fenced by the token (a lease
   * the agent has since ended is not touched). Answers task null, which the SDK does not send.
   */
  async function giveUpClaim(ref: { taskId: number; leaseToken: string }) {
    leases.remove(ref);
    await store.tasks.releaseIfLeased({ ...ref, reason: "claim_task cancelled by the agent", now: clock.now() });
    return ok({ task: null });
  }

  /** One claim: the persona's best ready task, passing over tasks this agent skipped. A read first: waiting agents must not take the write lock every time they look. */
  async function claimOnce(personaId: string, agent: string): Promise<ClaimedTask | null> {
    const skipped = ctx.skips.active(agent, clock.now());
    const ready = await store.tasks.listAvailable({ persona: personaId, now: clock.now(), limit: skipped.size + 1 });
    const pick = ready.find((t) => !skipped.has(t.id));
    if (pick === undefined) return null;
    if (skipped.size === 0) return (await store.tasks.claim({ persona: personaId, agentId: agent, limit: 1, now: clock.now() }))[0] ?? null;
    return store.tasks.claimById({ taskId: pick.id, agentId: agent, now: clock.now() });
  }

  tools.define({
    name: "heartbeat",
    description: "Renew your leases every task.heartbeatEveryMs. lost: tasks no longer yours.",
    input: {},
    legacy: { agentId: agentId.optional() },
    output: {},
    annotations: { ...WRITE, idempotentHint: true },
    handler: async (args) => {
      const agent = await session.require((args as { agentId?: string }).agentId);
      const beat = await renewAgentLeases(ctx, agent);
      return ok({ renewed: beat.renewed.map((r) => r.taskId), lost: beat.lost.map((r) => r.taskId) });
    },
  });

  tools.define({
    name: "report_progress",
    description: "Note progress on a task you hold.",
    input: { taskId, leaseToken, fraction: z.number().min(0).max(1).describe("0..1"), message: z.string().max(1000).optional().describe("status line"), usage: usageSoFar.optional() },
    output: {},
    annotations: { ...WRITE, idempotentHint: true },
    handler: async (args) => {
      // Checked before anything is written (a bad one answers VALIDATION naming the field).
      const total = args.usage === undefined ? null : validateUsage(args.usage);
      const out = await store.tasks.progressIfLeased({
        taskId: args.taskId,
        leaseToken: args.leaseToken,
        fraction: args.fraction,
        ...(args.message !== undefined ? { message: args.message } : {}),
        now: clock.now(),
      });
      if (!out.ok) return await lost(args);
      if (total !== null) {
        const stopped = await stopIfOverBudget(args, total);
        if (stopped !== null) return stopped;
      }
      return ok({ taskId: args.taskId });
    },
  });

  /**
   * An MCP worker's running total against its task's and goal's budgets (docs/economics.md,
   * "Streaming usage"): two reads; when one is reached the attempt settles as BUDGET_EXHAUSTED
   * with this total as its usage (given back uncounted, the task held until the budget is
   * raised), and the agent is told to stop. Its other running attempts' totals are not known
   * here: a goal counts its settled spend and this total.
   */
  async function stopIfOverBudget(ref: { taskId: number; leaseToken: string }, total: AttemptUsage) {
    const budget = await store.economics.attemptBudget({ taskId: ref.taskId });
    if (budget === null || (budget.task === null && budget.goal === null)) return null;
    const crossing = budgetCrossing(budget, spendOf(total, await store.economics.prices()));
    if (crossing === null) return null;
    const attempt = (await store.tasks.get({ taskId: ref.taskId, eventLimit: 0 })).attempts;
    const error = budgetExhaustedError({ id: ref.taskId, attempt }, crossing);
    const failed = await store.tasks.failIfLeased({ taskId: ref.taskId, leaseToken: ref.leaseToken, error: toErrorObject(error), usage: total, now: clock.now() });
    if (!failed.ok) return await lost(ref);
    leases.remove(ref);
    return toolError({ code: "BUDGET_EXHAUSTED", message: `${error.message}. Your lease is gone: stop working on this task.`, details: { taskId: ref.taskId, status: "pending" } });
  }

  tools.define({
    name: "complete_task",
    description: "Complete a task you hold; safe to retry (alreadyCompleted).",
    input: { taskId, leaseToken, result: result.optional(), tasks: childTasks.optional(), usage: usage.optional() },
    output: {},
    annotations: { ...WRITE, idempotentHint: true },
    handler: async (args) => {
      const out = await store.tasks.completeOnce({
        taskId: args.taskId,
        leaseToken: args.leaseToken,
        ...(args.result !== undefined ? { result: args.result as never } : {}),
        ...(args.tasks !== undefined ? { children: args.tasks as unknown as TaskInput[] } : {}),
        ...(args.usage !== undefined ? { usage: args.usage as AttemptUsage } : {}),
        now: clock.now(),
      });
      leases.remove(args);
      if (out.ok) return ok({ taskId: args.taskId, status: "completed", childIds: out.childIds, ...(Object.keys(out.childRefs).length > 0 ? { childRefs: out.childRefs } : {}) });
      if (out.code === "ALREADY_COMPLETED") {
        return ok({ taskId: args.taskId, status: "completed", childIds: out.childIds, alreadyCompleted: true, result: out.result }, () => `task ${args.taskId} was already completed with this lease`);
      }
      return await lost(args);
    },
  });

  tools.define({
    name: "fail_task",
    description: "Fail a task you hold; retried unless retryable:false.",
    input: { taskId, leaseToken, error: errorMessage, retryable: retryable.optional(), usage: usage.optional() },
    output: {},
    annotations: WRITE,
    handler: async (args) => {
      const out = await store.tasks.failIfLeased({
        taskId: args.taskId,
        leaseToken: args.leaseToken,
        error: { message: args.error, code: "ADAPTER_FAILED", retryable: args.retryable ?? true },
        ...(args.usage !== undefined ? { usage: args.usage as AttemptUsage } : {}),
        now: clock.now(),
      });
      if (!out.ok) return await lost(args);
      leases.remove(args);
      return ok(
        out.outcome === "failed"
          ? { taskId: args.taskId, status: "failed", attempt: out.attempt, blocked: out.blocked }
          : out.outcome === "parked"
            ? { taskId: args.taskId, status: "awaiting_input", attempt: out.attempt }
            : { taskId: args.taskId, status: "pending", attempt: out.attempt, runAt: out.runAt },
      );
    },
  });

  tools.define({
    name: "release_task",
    description: "Give a task back uncounted; skip:true if it is not for you.",
    input: {
      taskId,
      leaseToken,
      skip: z.boolean().optional().describe(`hide from you ${Math.round(ctx.skipMs / 60_000)} min`),
      reason: z.string().max(1000).optional().describe("why"),
      delayMs: z.number().int().min(0).max(3_600_000).optional().describe("hold from all, ms"),
    },
    output: {},
    annotations: WRITE,
    handler: async (args) => {
      const agent = session.agent;
      const out = await store.tasks.releaseIfLeased({
        taskId: args.taskId,
        leaseToken: args.leaseToken,
        reason: args.reason ?? (args.skip === true ? "skipped: not for this agent" : "released by agent"),
        ...(args.delayMs !== undefined ? { delayMs: args.delayMs } : {}),
        now: clock.now(),
      });
      if (!out.ok) return await lost(args);
      leases.remove(args);
      if (args.skip === true && agent !== null) ctx.skips.add(agent, args.taskId, clock.now() + ctx.skipMs);
      return ok({ taskId: args.taskId, status: "pending" });
    },
  });

  tools.define({
    name: "read_task",
    description: "A task's state, trail and result (from offset); or a persona's ready tasks.",
    input: {
      taskId: taskId.optional(),
      persona: persona.optional().describe("peek at its ready tasks"),
      offset: z.number().int().min(0).optional().describe("result start, chars"),
      limit: z.number().int().min(1).max(READ_PAGE_CHARS_MAX).optional().describe(`chars (default ${READ_PAGE_CHARS_DEFAULT})`),
    },
    output: {},
    annotations: READ,
    handler: async (args) => {
      if ((args.taskId === undefined) === (args.persona === undefined)) {
        throw new RosterError("VALIDATION", "taskId: give either taskId (read a task) or persona (peek at ready tasks)", { details: { field: "taskId" } });
      }
      if (args.persona !== undefined) {
        await requirePersona(args.persona);
        const skipped = session.agent === null ? new Set<number>() : ctx.skips.active(session.agent, clock.now());
        const ready = await store.tasks.listAvailable({ persona: args.persona, now: clock.now(), limit: PEEK_LIMIT });
        return ok({
          ready: ready.map((t) => ({ id: t.id, title: t.title, priority: t.priority, attempts: t.attempts, ...(skipped.has(t.id) ? { skipped: true } : {}) })),
        });
      }
      const id = args.taskId!;
      const detail = await store.tasks.get({ taskId: id, eventLimit: READ_TRAIL_EVENTS });
      const offset = args.offset ?? 0;
      const page = await store.tasks.resultPage({ taskId: id, offset, limit: args.limit ?? READ_PAGE_CHARS_DEFAULT });
      const whole = offset === 0 && page.text.length === page.totalChars;
      const task = {
        id: detail.id,
        title: detail.title,
        description: detail.description,
        persona: detail.persona,
        status: detail.status,
        attempts: detail.attempts,
        maxAttempts: detail.maxAttempts,
        rootId: detail.rootId,
        parentId: detail.parentId,
        dependsOn: detail.dependsOn,
        ...(detail.error !== null ? { error: { code: detail.error.code, message: detail.error.message } } : {}),
        ...(whole ? { result: detail.result } : { resultText: page.text, offset, resultChars: page.totalChars, nextOffset: offset + page.text.length < page.totalChars ? offset + page.text.length : null }),
        trail: detail.events.map((e) => ({ type: e.type, at: e.at, agentId: e.agentId, attempt: e.attempt })),
      };
      return ok({ task }, () => `task ${id} "${detail.title}" is ${detail.status}`);
    },
  });
}
