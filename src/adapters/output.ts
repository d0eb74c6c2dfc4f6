import { RosterError } from "../errors.js";
import type { Json, TaskInput } from "../store/types.js";

/**
 * The structured output rule (see types.ts): an object whose only keys are
 * `result` and/or `tasks`, with `tasks` an array, is `{ result, tasks }`; any other
 * value is the result itself. The result must be JSON and fit maxPayloadBytes.
 * Runs in the worker, so what crosses the thread boundary is plain JSON.
 */
export interface NormalizedOutput {
  result: Json;
  children?: TaskInput[];
}

export function isStructuredOutput(value: unknown): value is { result?: unknown; tasks?: unknown[] } {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (keys.length === 0 || !keys.every((k) => k === "result" || k === "tasks")) return false;
  const tasks = (value as { tasks?: unknown }).tasks;
  return tasks === undefined || Array.isArray(tasks);
}

function toJson(value: unknown, what: string, maxPayloadBytes: number): Json {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new RosterError("ADAPTER_OUTPUT_INVALID", `${what}: not serialisable as JSON (${(error as Error).message})`, { retryable: false, cause: error });
  }
  if (text === undefined) {
    throw new RosterError("ADAPTER_OUTPUT_INVALID", `${what}: not serialisable as JSON (a ${typeof value})`, { retryable: false });
  }
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > maxPayloadBytes) {
    throw new RosterError("ADAPTER_OUTPUT_INVALID", `${what}: ${bytes} bytes of JSON is over the limit of ${maxPayloadBytes}`, { retryable: false });
  }
  return JSON.parse(text) as Json;
}

export function normalizeOutput(value: unknown, maxPayloadBytes: number): NormalizedOutput {
  if (isStructuredOutput(value)) {
    const result = toJson(value.result, "result", maxPayloadBytes);
    if (value.tasks === undefined || value.tasks.length === 0) return { result };
    return { result, children: toJson(value.tasks, "tasks", maxPayloadBytes * 16) as unknown as TaskInput[] };
  }
  // Fast path for the common small plain results.
  if (value === undefined || value === null) return { result: null };
  return { result: toJson(value, "result", maxPayloadBytes) };
}
