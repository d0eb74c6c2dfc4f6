import type { Adapter } from "./types.js";

/**
 * `echo`: returns the task's payload (and, for a task with dependencies, what it
 * reviewed). Settles at once; the no-op of benchmarks and the demo's reviewer.
 */
export function createAdapter(): Adapter {
  return {
    run(task) {
      if (task.dependencies.length === 0) return { echo: task.payload };
      return {
        echo: task.payload,
        reviewed: task.dependencies.map((d) => ({ id: d.id, title: d.title, status: d.status })),
      };
    },
  };
}
