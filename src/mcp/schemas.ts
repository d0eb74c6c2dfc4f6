import { z } from "zod";
import { taskInputSchema } from "../store/index.js";
import { TASK_STATES } from "../store/types.js";

/**
 * The argument fields every roster tool shares, defined once so the same name
 * always means the same thing (agentId, persona, taskId, leaseToken, …). Every
 * one is described; descriptions are short because tools/list is sent to the
 * model on every session (the worker profile's budget is a test).
 */
export const WAIT_MS_MAX = 30_000;
export const LIST_LIMIT_MAX = 200;
export const LIST_LIMIT_DEFAULT = 50;
export const HEARTBEAT_TIMEOUT_MS_DEFAULT = 60_000;
export const CREATE_BATCH_MAX = 1_000;
/** Agent ids: what the server mints (`mcp-<uuid>`), or a resumed one; short and plain. */
export const AGENT_ID_MAX = 100;

const id = z.number().int().positive();

export const agentId = z
  .string()
  .min(1)
  .max(AGENT_ID_MAX)
  .regex(/^[A-Za-z0-9._:-]+$/, "must be letters, digits, '.', '_', ':' or '-'")
  .describe("optional: the session's own agent");
export const persona = z.string().min(1).max(200).describe("persona id");
export const taskId = id.describe("task id");
export const leaseToken = z.string().min(1).max(200).describe("from claim");
export const waitMs = z.number().int().min(0).max(WAIT_MS_MAX).describe(`ms (max ${WAIT_MS_MAX})`);
export const result = z.unknown().describe("any JSON");
export const errorMessage = z.string().min(1).max(16_384).describe("what went wrong");
export const retryable = z.boolean().describe("false: no retry");
export const taskState = z.enum(TASK_STATES);

const field = taskInputSchema.shape;

/**
 * One task of a plan: the shape of `roster add --file` (src/store/input.ts), each
 * field described for the model; a policy whose baseMs exceeds its maxMs is
 * refused there, for every way in.
 */
export const taskInput = taskInputSchema
  .extend({
    ref: field.ref.describe("name for dependsOn within this call"),
    persona: field.persona.describe("who does it (list_personas)"),
    title: field.title.describe("short imperative"),
    description: field.description.describe("what done means; markdown"),
    dependsOn: field.dependsOn.describe("refs of this call or task ids; runs after they complete"),
    priority: field.priority.describe("higher first; default 0"),
    payload: field.payload.describe("any JSON the worker receives"),
    maxAttempts: field.maxAttempts.describe("default: the persona's"),
    policy: field.policy.describe("retry overrides {maxAttempts,backoff,baseMs,maxMs,jitter,timeoutMs}"),
    delayMs: field.delayMs.describe("not before this many ms"),
    idempotencyKey: field.idempotencyKey.describe("same key again returns the existing task"),
  });

/** The tasks of create_tasks and create_goal. */
export const tasks = z.array(taskInput).min(1).max(CREATE_BATCH_MAX).describe("the tasks");

/**
 * Child tasks of complete_task. The same shape as a plan's tasks, validated whole
 * by the store; the schema is loose here so the worker profile's tools/list stays small.
 */
export const childTasks = z
  .array(z.looseObject({}))
  .max(CREATE_BATCH_MAX)
  .describe("child tasks {persona,title,description?,ref?,dependsOn?}");
