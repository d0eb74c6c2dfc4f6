import { RosterError } from "../errors.js";
import type { Json, TaskInput } from "../store/types.js";

/**
 * The structured output rule (see types.ts): an object whose only keys are
 * `result` and/or `tasks`, with `tasks` an array, is `{ result, tasks }`; any other
 * value is the result itself. The result must be JSON and fit maxPayloadBytes.
 * Runs in the worker, so what crosses the thread boundary is plain JSON: the
 * result as the JSON text made here, the one serialisation it gets on its way to
 * the database (the store takes the text as it is: CompleteParams.resultJson).
 */
export interface NormalizedOutput {
  /** The result's JSON text ("null" for none). */
  resultJson: string;
  children?: TaskInput[];
}

export function isStructuredOutput(value: unknown): value is { result?: unknown; tasks?: unknown[] } {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (keys.length === 0 || !keys.every((k) => k === "result" || k === "tasks")) return false;
  const tasks = (value as { tasks?: unknown }).tasks;
  return tasks === undefined || Array.isArray(tasks);
}

/** The value's JSON text, checked for size; undefined is null. */
function toJsonText(value: unknown, what: string, maxPayloadBytes: number): string {
  if (value === undefined) return "null";
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
  return text;
}

export function normalizeOutput(value: unknown, maxPayloadBytes: number): NormalizedOutput {
  if (isStructuredOutput(value)) {
    const resultJson = toJsonText(value.result, "result", maxPayloadBytes);
    if (value.tasks === undefined || value.tasks.length === 0) return { resultJson };
    // Children are validated by the store as values (taskInputSchema), so they cross as plain JSON values.
    return { resultJson, children: JSON.parse(toJsonText(value.tasks, "tasks", maxPayloadBytes * 16)) as Json as unknown as TaskInput[] };
  }
  // Fast path for the common small plain results.
  if (value === undefined || value === null) return { resultJson: "null" };
  return { resultJson: toJsonText(value, "result", maxPayloadBytes) };
}
