/**
 * What claim_task hands an agent: the claimed task's one view (adapterTask, as adapters get it)
 * shaped and bounded for an agent, and the heartbeat period it is told to keep.
 */
import { adapterTask } from "../adapters/task-view.js";
import type { ClaimedTask, DependencyResult, PreviousAttempt, TaskLineage } from "../store/index.js";

/** An agent renews its leases every leaseMs / HEARTBEAT_DIVISOR (a lease outlives two missed renewals, as the supervisor's every min(leaseMs)/3: docs/ARCHITECTURE.md, "The data path of one task", step 6). */
export const HEARTBEAT_DIVISOR = 3;
/** Dependencies listed in a claim; more are counted (moreDependencies) and read with read_task. */
export const CLAIM_DEPENDENCIES_MAX = 20;
/** A parent's or goal's description in a claim is cut to this many characters. */
export const CLAIM_CONTEXT_CHARS = 2_000;

/**
 * The bound on a claim's answer: its dependencies part is at most
 * CLAIM_DEPENDENCIES_MAX × (cut + DEPENDENCY_OVERHEAD_CHARS) characters whatever
 * the results, plus the task's own title, description and payload (bounded by
 * enqueue) and its parent's and goal's briefs (CLAIM_CONTEXT_CHARS each).
 */
export const DEPENDENCY_OVERHEAD_CHARS = 700;

function brief(task: { id: number; title: string; description: string } | null): Record<string, unknown> | undefined {
  if (task === null) return undefined;
  const cut = task.description.length > CLAIM_CONTEXT_CHARS;
  return {
    id: task.id,
    title: task.title,
    description: cut ? task.description.slice(0, CLAIM_CONTEXT_CHARS) : task.description,
    ...(cut ? { descriptionChars: task.description.length } : {}),
  };
}

/** A dependency as a claim shows it: its result whole when short, else its first `cut` JSON characters and full size. */
export function dependencyView(dep: DependencyResult, cutChars: number): Record<string, unknown> {
  const base = { id: dep.id, title: dep.title, persona: dep.persona, status: dep.status };
  if (dep.result === null) return { ...base, result: null };
  const json = JSON.stringify(dep.result);
  if (json.length <= cutChars) return { ...base, result: dep.result };
  return { ...base, resultPreview: json.slice(0, cutChars), resultChars: json.length, truncated: true };
}

/**
 * How the last failed attempt ended, as a claim shows it: the adapter's `task.previous` (code,
 * message, retryable, details), bounded like the rest of a claim: the message cut to
 * CLAIM_CONTEXT_CHARS (`messageChars` gives its length), the details whole when their JSON is at
 * most `cutChars`, else `detailsPreview` (their first `cutChars` JSON characters), `detailsChars`
 * and `truncated: true`.
 */
export function previousView(previous: PreviousAttempt, cutChars: number): Record<string, unknown> {
  const cut = previous.message.length > CLAIM_CONTEXT_CHARS;
  const view: Record<string, unknown> = {
    code: previous.code,
    message: cut ? previous.message.slice(0, CLAIM_CONTEXT_CHARS) : previous.message,
    ...(cut ? { messageChars: previous.message.length } : {}),
    retryable: previous.retryable,
  };
  if (previous.details === undefined) return view;
  const json = JSON.stringify(previous.details);
  if (json.length <= cutChars) return { ...view, details: previous.details };
  return { ...view, detailsPreview: json.slice(0, cutChars), detailsChars: json.length, truncated: true };
}

/**
 * What claim_task hands the agent: the task's one view (adapterTask, as adapters get it) shaped for an
 * agent: where it sits (parent, goal briefs instead of parentId), bounded dependency results, how the
 * last failed attempt ended (previous), the questions it asked with their answers, and when to heartbeat.
 */
export function claimedView(task: ClaimedTask, lineage: TaskLineage | undefined, cutChars: number): Record<string, unknown> {
  const { parentId: _parentId, previous, dependencies, inputs, ...fields } = adapterTask(task);
  const deps = dependencies.slice(0, CLAIM_DEPENDENCIES_MAX).map((d) => dependencyView(d, cutChars));
  const root = lineage?.root ?? null;
  const parent = lineage?.parent ?? null;
  return {
    ...fields,
    rootId: lineage?.rootId ?? task.id,
    ...(parent !== null ? { parent: brief(parent) } : {}),
    // The goal (root) when it is not the parent itself.
    ...(root !== null && root.id !== parent?.id ? { goal: brief(root) } : {}),
    leaseMs: task.leaseMs,
    heartbeatEveryMs: Math.floor(task.leaseMs / HEARTBEAT_DIVISOR),
    dependencies: deps,
    ...(dependencies.length > deps.length ? { moreDependencies: dependencies.length - deps.length } : {}),
    ...(previous !== undefined ? { previous: previousView(previous, cutChars) } : {}),
    ...(inputs !== undefined && inputs.length > 0 ? { inputs: inputs.map((i) => ({ question: i.question, answer: i.answer })) } : {}),
  };
}
