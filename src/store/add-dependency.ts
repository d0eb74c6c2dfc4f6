/**
 * `tasks.addDependency` for every engine, all but its SQL: the checks that refuse an edge
 * (a task on itself, an unknown dependency, a task that has started, a cycle: docs/ARCHITECTURE.md
 * rule 1) and the cycle search, which follows dependencies breadth first from the new
 * dependency and gives the path if it reaches the task. The search reads one task's
 * dependencies at a time, as the engine gives them: SQLite from a prepared statement inside
 * its synchronous transaction (dependencyPath), PostgreSQL with a query per step
 * (dependencyPathAsync).
 */
import { RosterError } from "../errors.js";
import type { TaskState } from "./types.js";

/** Refuses a dependency of a task on itself (SELF_DEPENDENCY), before anything is read. */
export function refuseSelfDependency(taskId: number, dependsOn: number): void {
  if (taskId === dependsOn) throw new RosterError("SELF_DEPENDENCY", `dependsOn: task ${taskId} cannot depend on itself`, { details: { field: "dependsOn", taskId } });
}

/** Refuses an unknown dependency (DEPENDENCY_NOT_FOUND) and a task that has started (INVALID_STATE): only waiting, pending or blocked tasks take new dependencies. */
export function refuseNewDependency(taskId: number, task: { status: TaskState }, dependsOn: number, dep: { status: TaskState } | undefined): asserts dep is { status: TaskState } {
  if (dep === undefined) throw new RosterError("DEPENDENCY_NOT_FOUND", `dependsOn: task ${dependsOn} does not exist`, { details: { field: "dependsOn", taskId: dependsOn } });
  if (task.status !== "waiting" && task.status !== "pending" && task.status !== "blocked") {
    throw new RosterError("INVALID_STATE", `taskId: task ${taskId} is ${task.status}; dependencies can only be added before it runs`, { details: { field: "taskId", status: task.status } });
  }
}

/** Refuses the edge taskId → dependsOn when dependsOn already reaches taskId by `path` (DEPENDENCY_CYCLE, naming the cycle). */
export function refuseCycle(taskId: number, dependsOn: number, path: number[] | null): void {
  if (path === null) return;
  const cycle = [taskId, ...path];
  throw new RosterError("DEPENDENCY_CYCLE", `dependsOn: adding ${taskId} -> ${dependsOn} would close the cycle ${cycle.join(" -> ")}`, { details: { field: "dependsOn", cycle } });
}

/** A new dependency in this state blocks its dependent at once (it will never complete unless retried). */
export function blocksDependent(status: TaskState): boolean {
  return status === "failed" || status === "cancelled" || status === "blocked";
}

/** The search: yields the task whose dependencies it needs next and is resumed with them; returns the path or null. */
function* search(from: number, to: number): Generator<number, number[] | null, readonly number[]> {
  const previous = new Map<number, number>([[from, from]]);
  const queue = [from];
  while (queue.length > 0) {
    const current = queue.shift()!;
    if (current === to) {
      const path = [to];
      let node = to;
      while (node !== from) {
        node = previous.get(node)!;
        path.unshift(node);
      }
      return path;
    }
    for (const next of yield current) {
      if (!previous.has(next)) {
        previous.set(next, current);
        queue.push(next);
      }
    }
  }
  return null;
}

/** Whether `from` reaches `to` by following dependencies (`dependenciesOf`: a task's direct dependencies); the path if it does. */
export function dependencyPath(from: number, to: number, dependenciesOf: (taskId: number) => readonly number[]): number[] | null {
  const steps = search(from, to);
  let step = steps.next();
  while (!step.done) step = steps.next(dependenciesOf(step.value));
  return step.value;
}

/** dependencyPath with dependencies read asynchronously. */
export async function dependencyPathAsync(from: number, to: number, dependenciesOf: (taskId: number) => Promise<readonly number[]>): Promise<number[] | null> {
  const steps = search(from, to);
  let step = steps.next();
  while (!step.done) step = steps.next(await dependenciesOf(step.value));
  return step.value;
}
