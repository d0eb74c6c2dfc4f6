import { TypedEventBus } from "../events.js";
import type { AbortKind } from "./run.js";

/**
 * The supervisor's own typed events ("noun:verb"), on its own bus. Metrics, logs
 * and the live status subscribe here; nothing in the supervisor imports them.
 * Store events (task:claimed, task:completed …) stay on store.events.
 */
export type RunOutcome = "completed" | "failed" | "retrying" | "released" | "lease-lost";

export interface SupervisorEventMap {
  /** Once per claim pass and once per poll interval: the loop is alive (/healthz). */
  "loop:tick": { at: number };
  "task:run-started": { taskId: number; persona: string; attempt: number };
  "task:run-finished": { taskId: number; persona: string; attempt: number; durationMs: number; outcome: RunOutcome; errorCode?: string; errorMessage?: string };
  /** An attempt is being aborted: timeout, lost lease, cancellation, shutdown, or its budget reached while it ran. */
  "task:aborting": { taskId: number; persona: string; attempt: number; reason: AbortKind };
  "slots:changed": { busy: number; capacity: number };
  "progress:reported": { taskId: number; persona: string; attempt: number; fraction: number; message: string | null };
  "lease:renewed": { count: number; lost: number };
  "reaper:ran": { retried: number; failed: number; expiredAgents: number };
  "supervisor:started": { agentId: string };
  "supervisor:stopping": { reason: string; running: number };
  "supervisor:stopped": { reason: string; agentId: string };
  /** Once per poll interval per persona served: how long the ready task a claim would take next has been ready (0: none). */
  "ready:oldest": { persona: string; ageSeconds: number };
  /** A ready task waited past the stall bound beside a free slot with no claim tried (docs/ARCHITECTURE.md, rule 13). */
  "stall:detected": { persona: string; taskId: number; waitedMs: number; boundMs: number };
  /** The personas served changed while running (hot reload). */
  "personas:reloaded": { added: string[]; changed: string[]; removed: string[] };
  /** A store call failed with DATABASE_IO: no claims until a renewal commits again (src/supervisor/connection.ts). */
  "db:unreachable": { reason: string };
  /** A renewal committed after the database was unreachable for `afterMs`. */
  "db:reachable": { afterMs: number };
  /** Something failed in the loop itself (a store call); the loop goes on. */
  "supervisor:error": { where: string; error: Error };
}

export type SupervisorEventName = keyof SupervisorEventMap;

/** The supervisor's events on the one typed bus (src/events.ts). */
export class SupervisorEventBus extends TypedEventBus<SupervisorEventMap> {}
