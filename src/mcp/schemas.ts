import { z } from "zod";
import { taskInputSchema } from "../store/index.js";
import { TASK_STATES } from "../store/types.js";

/**
 * The argument fields every roster tool shares, defined once so the same name
 * always means the same thing (agentId, persona, taskId, leaseToken, …).
 * Descriptions are kept short: they are sent on every tools/list.
 */
export const WAIT_MS_MAX = 30_000;
export const LIST_LIMIT_MAX = 200;
export const LIST_LIMIT_DEFAULT = 50;
export const HEARTBEAT_TIMEOUT_MS_DEFAULT = 60_000;
export const CREATE_BATCH_MAX = 1_000;

const id = z.number().int().positive();

export const agentId = z.string().min(1).describe("from register_agent");
export const persona = z.string().min(1).describe("persona id");
export const taskId = id;
export const leaseToken = z.string().min(1).describe("from claim_task");
export const waitMs = z.number().int().min(0).max(WAIT_MS_MAX).describe(`wait up to this long for a ready task (max ${WAIT_MS_MAX})`);
export const result = z.unknown().describe("any JSON");
export const errorMessage = z.string().min(1).max(16_384).describe("what went wrong");
export const retryable = z.boolean().describe("false: never retry (default true)");
export const taskState = z.enum(TASK_STATES);

/** The plan shape of `roster add --file` (src/store/input.ts), for create_tasks. */
export const tasks = z.array(taskInputSchema).min(1).max(CREATE_BATCH_MAX);

/**
 * Child tasks of complete_task. Same shape as create_tasks.tasks, validated whole by
 * the store; the schema is left loose here so the worker profile's tools/list stays small.
 */
export const childTasks = z
  .array(z.looseObject({ persona: z.string(), title: z.string() }))
  .max(CREATE_BATCH_MAX)
  .describe("child tasks, same shape as create_tasks.tasks");
