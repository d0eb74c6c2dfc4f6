import { RosterError, coerceError } from "../../errors.js";
import { MAX_PAYLOAD_BYTES_DEFAULT, validateBatch } from "../../store/input.js";
import type { TaskInput } from "../../store/types.js";

/**
 * A planner's answer is prose around one JSON object `{ result?, tasks }` whose
 * tasks use the plan shape of src/store/input.ts (ref, persona, title, description,
 * dependsOn …). The object is taken from the whole answer when it is JSON, else
 * from the last ```json fence, else from the outermost braces. The batch is
 * validated here (shape, refs, cycles) so a bad plan fails the attempt with the
 * offending task named; persona existence is checked by the store on completion.
 */
export interface Plan {
  summary: string;
  tasks: TaskInput[];
}

export function parsePlan(answer: string, maxPayloadBytes = MAX_PAYLOAD_BYTES_DEFAULT): Plan {
  const doc = extractJson(answer);
  if (doc === null) {
    throw invalid("the planner's answer holds no JSON object with a tasks array");
  }
  if (typeof doc !== "object" || Array.isArray(doc) || !Array.isArray((doc as { tasks?: unknown }).tasks)) {
    throw invalid("the planner's JSON must be an object with a tasks array");
  }
  const { result, tasks } = doc as { result?: unknown; tasks: unknown[] };
  let validated;
  try {
    validated = tasks.length === 0 ? [] : validateBatch(tasks, maxPayloadBytes);
  } catch (error) {
    const e = coerceError(error);
    throw invalid(`the planner's plan is invalid: ${e.message}`, e);
  }
  const summary = typeof result === "string" ? result : result === undefined ? prose(answer) : JSON.stringify(result);
  return { summary, tasks: validated.map(({ payloadJson: _payloadJson, ...task }) => task) };
}

function invalid(message: string, cause?: Error): RosterError {
  // Retryable: a model that answered badly once may answer well the next time.
  return new RosterError("ADAPTER_OUTPUT_INVALID", message, { cause, retryable: true });
}

function extractJson(text: string): unknown {
  const candidates: string[] = [text.trim()];
  const fences = [...text.matchAll(/```(?:json)?[ \t]*\r?\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
  candidates.push(...fences.reverse());
  const first = text.indexOf("{");
  const last = text.lastIndexOf("}");
  if (first >= 0 && last > first) candidates.push(text.slice(first, last + 1));
  for (const candidate of candidates) {
    const value = tryJson(candidate);
    if (value !== undefined && typeof value === "object" && value !== null && Array.isArray((value as { tasks?: unknown }).tasks)) return value;
  }
  return null;
}

function tryJson(text: string): unknown {
  if (!text.startsWith("{")) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not JSON: the caller tries the next candidate.
    return undefined;
  }
}

/** The answer without its JSON, as a fallback summary. */
function prose(answer: string): string {
  const cut = answer.replace(/```(?:json)?[\s\S]*?```/g, "").trim();
  const first = cut.indexOf("{");
  return (first >= 0 ? cut.slice(0, first) : cut).trim();
}
