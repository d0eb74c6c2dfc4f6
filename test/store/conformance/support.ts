import { expect } from "vitest";
import type { ManualClock } from "../../../src/clock.js";
import { RosterError, type ErrorCode } from "../../../src/errors.js";
import type { ClaimedTask, Store, TaskDetail, TaskInput } from "../../../src/store/index.js";

/** What a store implementation hands the conformance suite. */
export interface StoreHarness {
  store: Store;
  /** Row count of every table the implementation keeps (task_events included). */
  rowCounts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** Opens a fresh, migrated, empty store. The suite syncs its own personas. */
/** `monotonic` is the test's manual clock: the store judges liveness on it (src/store/liveness.ts). */
export type StoreFactory = (options: { now: number; monotonic: () => number }) => Promise<StoreHarness>;

export interface Ctx {
  h: StoreHarness;
  store: Store;
  clock: ManualClock;
}

export type GetCtx = () => Ctx;

export async function enqueue(ctx: Ctx, tasks: TaskInput[], extra: { parentId?: number } = {}): Promise<number[]> {
  const { ids } = await ctx.store.tasks.enqueue({ tasks, now: ctx.clock.now(), ...extra });
  return ids;
}

export async function enqueueOne(ctx: Ctx, task: Partial<TaskInput> = {}): Promise<number> {
  const [id] = await enqueue(ctx, [{ persona: "worker", title: "a task", ...task }]);
  return id!;
}

/** Claims exactly one task of the persona (fails the test otherwise). */
export async function claimOne(ctx: Ctx, persona = "worker", agentId = "agent-a", extra: { leaseMs?: number } = {}): Promise<ClaimedTask> {
  const claimed = await ctx.store.tasks.claim({ persona, agentId, now: ctx.clock.now(), ...extra });
  expect(claimed).toHaveLength(1);
  return claimed[0]!;
}

export async function complete(ctx: Ctx, task: ClaimedTask, result: unknown = { ok: true }): Promise<void> {
  const outcome = await ctx.store.tasks.completeIfLeased({ taskId: task.id, leaseToken: task.leaseToken, result: result as never, now: ctx.clock.now() });
  expect(outcome.ok).toBe(true);
}

export async function status(ctx: Ctx, taskId: number): Promise<string> {
  return (await ctx.store.tasks.get({ taskId })).status;
}

export async function eventTypes(ctx: Ctx, taskId: number): Promise<string[]> {
  return (await ctx.store.tasks.events({ taskId })).map((e) => e.type);
}

export interface Snapshot {
  rows: Record<string, number>;
  tasks: TaskDetail[];
}

export async function snapshot(ctx: Ctx, taskIds: number[] = []): Promise<Snapshot> {
  const rows = await ctx.h.rowCounts();
  const tasks = await Promise.all(taskIds.map((taskId) => ctx.store.tasks.get({ taskId, eventLimit: 1000 })));
  return { rows, tasks };
}

/**
 * Runs a write that must be refused with `code` and a message matching every
 * pattern (the field, the task index or ref), then checks that no row of any
 * table was written and the named tasks did not change.
 */
export async function expectRefused(
  ctx: Ctx,
  action: () => Promise<unknown>,
  code: ErrorCode,
  patterns: Array<RegExp | string>,
  taskIds: number[] = [],
): Promise<RosterError> {
  const before = await snapshot(ctx, taskIds);
  let caught: unknown;
  try {
    await action();
  } catch (error) {
    caught = error;
  }
  expect(caught, "the write should have been refused").toBeInstanceOf(RosterError);
  const error = caught as RosterError;
  expect(error.code).toBe(code);
  for (const pattern of patterns) {
    if (typeof pattern === "string") expect(error.message).toContain(pattern);
    else expect(error.message).toMatch(pattern);
  }
  expect(await snapshot(ctx, taskIds)).toEqual(before);
  return error;
}

/** A random source that always returns `value`, for exact backoff. */
export const fixedRandom = (value: number) => () => value;
