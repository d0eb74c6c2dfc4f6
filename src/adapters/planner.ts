import { RosterError } from "../errors.js";
import type { Json, TaskInput } from "../store/types.js";
import type { Adapter, AdapterOutput, AdapterTask } from "./types.js";
import { payloadInt, payloadObject } from "./work.js";

/**
 * The deterministic demo planner. It decomposes a goal (`payload.goal`, else the
 * title) into steps: the parts of the goal after a colon, split on commas, "and"
 * or semicolons (or `payload.steps`); a goal with fewer than two parts becomes
 * "<goal> (1/3: outline)", "(2/3: build)", "(3/3: check)".
 *
 * Above the last level (`payload.depth`, default 2 planning levels) the last step
 * goes to a sub-planner (this persona, level + 1) and the others to implementers;
 * a reviewer depends on all of them. So a goal becomes a three-level DAG: goal →
 * implementers + sub-planner + reviewer → the sub-planner's implementers +
 * reviewer. The same input always gives the same plan.
 *
 * Payload fields: goal, steps, level, depth, implementer / reviewer / planner
 * (persona ids; defaults "implementer", "reviewer" and the task's own persona),
 * implementerPayload (merged into each implementer task's payload).
 */
export const PLANNER_DEPTH_DEFAULT = 2;
export const PLANNER_STEPS_MAX = 20;

export function splitGoal(goal: string): string[] {
  const colon = goal.indexOf(":");
  const body = colon >= 0 ? goal.slice(colon + 1) : goal;
  const parts = body
    .split(/\s*(?:,|;|\band\b)\s*/i)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (parts.length >= 2) return parts.slice(0, PLANNER_STEPS_MAX);
  const subject = goal.trim();
  return [`${subject} (1/3: outline)`, `${subject} (2/3: build)`, `${subject} (3/3: check)`];
}

function stringField(payload: Record<string, Json>, field: string, fallback: string): string {
  const value = payload[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "string" || value.trim() === "") {
    throw new RosterError("VALIDATION", `payload.${field}: must be a non-empty string`, { retryable: false, details: { field: `payload.${field}` } });
  }
  return value;
}

export function plan(task: Pick<AdapterTask, "title" | "payload" | "persona">): AdapterOutput {
  const payload = payloadObject(task.payload);
  const goal = stringField(payload, "goal", task.title);
  const level = payloadInt(task.payload, "level", 0);
  const depth = payloadInt(task.payload, "depth", PLANNER_DEPTH_DEFAULT);
  const implementer = stringField(payload, "implementer", "implementer");
  const reviewer = stringField(payload, "reviewer", "reviewer");
  const planner = stringField(payload, "planner", task.persona);
  const extra = payloadObject(payload.implementerPayload ?? null);
  let steps: string[];
  if (payload.steps !== undefined && payload.steps !== null) {
    if (!Array.isArray(payload.steps) || payload.steps.length === 0 || !payload.steps.every((s) => typeof s === "string" && s.trim() !== "")) {
      throw new RosterError("VALIDATION", "payload.steps: must be a non-empty array of non-empty strings", { retryable: false, details: { field: "payload.steps" } });
    }
    steps = (payload.steps as string[]).slice(0, PLANNER_STEPS_MAX);
  } else {
    steps = splitGoal(goal);
  }
  const delegate = level + 1 < depth && steps.length >= 2;
  const own = delegate ? steps.slice(0, -1) : steps;
  const tasks: TaskInput[] = own.map((step, i) => ({
    ref: `step-${i + 1}`,
    persona: implementer,
    title: step,
    description: `Step ${i + 1} of "${goal}"`,
    payload: { ...extra, goal, step: i + 1 },
  }));
  if (delegate) {
    const last = steps[steps.length - 1]!;
    tasks.push({
      ref: "subplan",
      persona: planner,
      title: `plan: ${last}`,
      description: `Break "${last}" (part of "${goal}") into steps`,
      payload: { goal: last, level: level + 1, depth, implementer, reviewer, planner, implementerPayload: extra },
    });
  }
  tasks.push({
    ref: "review",
    persona: reviewer,
    title: `review: ${goal}`,
    description: `Check the results of the ${tasks.length} tasks of "${goal}"`,
    dependsOn: tasks.map((t) => t.ref!),
    payload: { goal, level },
  });
  return { result: { goal, level, steps }, tasks };
}

export function createAdapter(): Adapter {
  return {
    run(task, ctx) {
      ctx.progress(0.5, "decomposing the goal");
      return plan(task);
    },
  };
}
