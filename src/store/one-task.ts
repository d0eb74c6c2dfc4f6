/**
 * The one-task calls of the Store, defined once for every engine: each is a batch of
 * one through the engine's single write path for its transition (`tasks.start`,
 * `tasks.settle`), so a completion, failure or release of one task is recorded exactly
 * as the supervisor's batches are (docs/ARCHITECTURE.md, "One path per transition").
 * A one-task completion is settled with `invalid: "refuse"`: its caller (an MCP agent,
 * a test, a command) is told what is wrong and keeps its lease.
 */
import type { CompleteResult, FailResult, TaskService } from "./types.js";

/** The task calls an engine implements; the one-task calls below are derived from them. */
export type EngineTaskService = Omit<TaskService, "claimById" | "startIfLeased" | "completeIfLeased" | "failIfLeased" | "releaseIfLeased">;

/** An engine's task service with the one-task calls added. */
export function withOneTaskCalls(engine: EngineTaskService): TaskService {
  const one = async <T>(results: Promise<T[]>): Promise<T> => (await results)[0]!;
  return {
    ...engine,
    claimById: async ({ taskId, agentId, leaseMs, now }) => (await engine.claim({ taskId, agentId, now, ...(leaseMs === undefined ? {} : { leaseMs }) }))[0] ?? null,
    startIfLeased: ({ taskId, leaseToken, now }) => one(engine.start({ starts: [{ taskId, leaseToken }], now })),
    // With invalid output refused, a completion is recorded as completed or not at all.
    completeIfLeased: async ({ now, ...rest }) => (await one(engine.settle({ settlements: [{ kind: "complete", ...rest }], now, invalid: "refuse" }))) as CompleteResult,
    // A failure never completes its task.
    failIfLeased: async ({ now, ...rest }) => (await one(engine.settle({ settlements: [{ kind: "fail", ...rest }], now }))) as FailResult,
    releaseIfLeased: ({ now, ...rest }) => one(engine.settle({ settlements: [{ kind: "release", ...rest }], now })),
  };
}
