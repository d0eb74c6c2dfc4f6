/**
 * What an enqueue decides without the database (docs/ARCHITECTURE.md rule 1), once for both
 * engines: the errors that name the task and field, each task's resolved retry policy, each
 * new task's state and unmet-dependency count, its task:enqueued data, and the refs answered.
 * SQLite (src/store/sqlite/enqueue.ts) and PostgreSQL (src/store/postgres/enqueue.ts) read
 * what they need (personas, existing dependencies, idempotency keys) and write the rows with
 * their own SQL.
 */
import { RosterError } from "../errors.js";
import { resolveTaskPolicy, type PersonaPolicyConfig, type RetryPolicy } from "../policy/retry.js";
import type { ValidatedTask } from "./input.js";
import { unknownNameHint } from "./suggest.js";
import type { TaskState } from "./types.js";

/** A task's place in its batch, as errors name it. */
export function label(task: ValidatedTask, index: number): string {
  return task.ref === undefined ? `tasks[${index}]` : `tasks[${index}] (ref "${task.ref}")`;
}

export function parentNotFound(parentId: number): RosterError {
  return new RosterError("TASK_NOT_FOUND", `parentId: task ${parentId} does not exist`, { details: { field: "parentId" } });
}

/**
 * A persona named at `field` that does not exist or is retired: the message names the ones
 * that exist, and the likely typo (read by people and agents alike). Tasks and schedules say it alike.
 */
export function unknownPersona(field: string, persona: string, retired: boolean, known: string[], details: Record<string, unknown> = {}): RosterError {
  const what = retired ? "retired persona" : "unknown persona";
  return new RosterError("PERSONA_NOT_FOUND", `${field}: ${what} "${persona}"${unknownNameHint(persona, known)}`, {
    details: { ...details, field: "persona", persona, known, ...(retired ? { retired: true } : {}) },
  });
}

/** A persona not in service, as a store reads it: retired (its row is kept) or never synced, and the ids in service. */
export interface PersonaMissing {
  retired: boolean;
  known: string[];
}

/** A task naming a persona that does not exist or is retired (unknownPersona, at the task's place in its batch). */
export function personaNotFound(task: ValidatedTask, index: number, retired: boolean, known: string[]): RosterError {
  return unknownPersona(`${label(task, index)}.persona`, task.persona, retired, known, { index });
}

export function dependencyNotFound(task: ValidatedTask, index: number, dep: number): RosterError {
  return new RosterError("DEPENDENCY_NOT_FOUND", `${label(task, index)}.dependsOn: task ${dep} does not exist`, { details: { index, field: "dependsOn", taskId: dep } });
}

/** A task's retry policy and timeout, resolved, with the policy as JSON text. */
export interface ResolvedPolicy {
  policy: RetryPolicy;
  timeoutMs: number;
  json: string;
}

/** Each task's policy: its persona's, overridden per task. Most tasks of a batch take their persona's as it is, resolved and serialised once per persona. */
export function resolvePolicies(tasks: readonly ValidatedTask[], configs: ReadonlyMap<string, PersonaPolicyConfig>): ResolvedPolicy[] {
  const personaPolicies = new Map<string, ResolvedPolicy>();
  return tasks.map((task) => {
    const config = configs.get(task.persona)!;
    if (task.policy === undefined && task.maxAttempts === undefined) {
      let shared = personaPolicies.get(task.persona);
      if (shared === undefined) {
        const resolved = resolveTaskPolicy(config);
        personaPolicies.set(task.persona, (shared = { ...resolved, json: JSON.stringify(resolved.policy) }));
      }
      return shared;
    }
    const resolved = resolveTaskPolicy(config, { ...task.policy, ...(task.maxAttempts !== undefined ? { maxAttempts: task.maxAttempts } : {}) });
    return { ...resolved, json: JSON.stringify(resolved.policy) };
  });
}

/** Index of each ref in its batch. */
export function refIndexOf(tasks: readonly ValidatedTask[]): Map<string, number> {
  const refIndex = new Map<string, number>();
  tasks.forEach((task, index) => task.ref !== undefined && refIndex.set(task.ref, index));
  return refIndex;
}

/**
 * States in dependency order: a batch task is blocked when any dependency is, waiting while
 * any is not completed, else pending. `statuses` comes filled for idempotent hits (their
 * stored state, known before any task that depends on them is resolved, whatever their
 * place in the batch) and is filled for the rest; the unmet counts of new tasks are returned.
 */
export function resolveStates(
  tasks: readonly ValidatedTask[],
  statuses: Array<TaskState | undefined>,
  existing: ReadonlyMap<number, TaskState>,
  refIndex: ReadonlyMap<string, number>,
): { statuses: TaskState[]; unmetCounts: number[] } {
  const unmetCounts: number[] = new Array<number>(tasks.length).fill(0);
  const resolve = (index: number): TaskState => {
    const known = statuses[index];
    if (known !== undefined) return known;
    const task = tasks[index]!;
    let unmet = 0;
    let blocked = false;
    for (const dep of task.dependsOn ?? []) {
      const state = typeof dep === "number" ? existing.get(dep)! : resolve(refIndex.get(dep)!);
      if (state === "failed" || state === "cancelled" || state === "blocked") blocked = true;
      if (state !== "completed") unmet++;
    }
    const state: TaskState = blocked ? "blocked" : unmet > 0 ? "waiting" : "pending";
    statuses[index] = state;
    unmetCounts[index] = unmet;
    return state;
  };
  tasks.forEach((_task, index) => resolve(index));
  return { statuses: statuses as TaskState[], unmetCounts };
}

/** The data of a new task's task:enqueued event. */
export function enqueuedData(state: TaskState, parentId: number | null): string {
  return JSON.stringify({ status: state, ...(parentId !== null ? { parentId } : {}) });
}

/** The ids the batch's refs name. */
export function refsOf(tasks: readonly ValidatedTask[], ids: readonly number[]): Record<string, number> {
  const refs: Record<string, number> = {};
  tasks.forEach((task, index) => {
    if (task.ref !== undefined) refs[task.ref] = ids[index]!;
  });
  return refs;
}
