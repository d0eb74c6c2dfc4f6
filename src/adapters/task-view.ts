import type { ClaimedTask } from "../store/types.js";
import type { AdapterTask } from "./types.js";

/**
 * The one view of a claimed task that whoever runs it is given: the adapter's
 * `task` (a worker thread's, through the pool), and the base of the task an MCP
 * agent's claim returns. Lease fields (token, expiry) stay with the holder: an
 * adapter never sees them. Optional fields (`inputs`, `previous`) are present
 * only when the claim carries them, so a retried attempt sees how the last one
 * ended and what a person answered.
 */
export function adapterTask(task: ClaimedTask): AdapterTask {
  return {
    id: task.id,
    title: task.title,
    description: task.description,
    persona: task.persona,
    payload: task.payload,
    priority: task.priority,
    parentId: task.parentId,
    attempt: task.attempt,
    maxAttempts: task.maxAttempts,
    timeoutMs: task.timeoutMs,
    dependencies: task.dependencies,
    ...(task.inputs === undefined ? {} : { inputs: task.inputs }),
    ...(task.previous === undefined ? {} : { previous: task.previous }),
  };
}
