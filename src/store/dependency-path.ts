/**
 * The cycle check of `tasks.addDependency` (docs/ARCHITECTURE.md rule 1), for every engine:
 * whether `from` reaches `to` by following dependencies, breadth first, and the path if it
 * does. The search reads one task's dependencies at a time, as the engine gives them: SQLite
 * from a prepared statement inside its synchronous transaction (dependencyPath), PostgreSQL
 * with a query per step (dependencyPathAsync).
 */

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
