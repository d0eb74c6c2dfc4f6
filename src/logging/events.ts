import type { StoreEventBus } from "../store/index.js";
import type { SupervisorEventBus } from "../supervisor/events.js";
import { taskLogger, type Logger } from "./logger.js";

/**
 * Log lines fed by events, so the store and the supervisor never import pino.
 * Each task line goes through a child logger carrying taskId, persona, attempt
 * (and agentId where known). Levels: the normal flow at debug, an attempt's
 * end at info, trouble (a failed task, a retry, an expired lease, a
 * SQLITE_BUSY retry) at warn. The supervisor logs its own lifecycle, its
 * errors, aborts and the reaper's work; those are not repeated here.
 *
 * Returns a function that unsubscribes everything.
 */
export function logEvents(options: { logger: Logger; store?: { events: StoreEventBus }; supervisor?: { events: SupervisorEventBus } }): () => void {
  const { logger } = options;
  const offs: Array<() => void> = [];
  const store = options.store?.events;
  if (store !== undefined) {
    offs.push(
      store.on("task:enqueued", ({ ids, ready }) => logger.debug({ taskIds: ids, ready }, "tasks enqueued")),
      store.on("task:claimed", ({ tasks, agentId }) => {
        for (const t of tasks) taskLogger(logger, { taskId: t.id, persona: t.persona, attempt: t.attempt, agentId }).debug({ waitMs: t.claimedAt - t.readyAt }, "task claimed");
      }),
      store.on("task:retrying", ({ taskId, persona, attempt, runAt }) => taskLogger(logger, { taskId, persona, attempt }).warn({ runAt }, "task will be retried")),
      store.on("task:failed", ({ taskId, persona, attempt, blocked }) => taskLogger(logger, { taskId, persona, attempt }).warn({ blocked }, "task failed")),
      store.on("task:cancelled", ({ taskIds, persona }) => logger.info({ taskIds, persona }, "task cancelled")),
      store.on("lease:expired", ({ taskId, persona, attempt, outcome }) =>
        taskLogger(logger, { taskId, persona, attempt }).warn({ outcome }, "lease expired without a heartbeat"),
      ),
      store.on("lease:lost", ({ taskId, op }) => logger.debug({ taskId, op }, "lease lost; the write was refused")),
      store.on("agent:expired", ({ agentIds }) => logger.warn({ agentIds }, "agents expired")),
      store.on("db:busy-retry", ({ attempt }) => logger.warn({ attempt }, "database busy; retrying the transaction")),
      store.on("store:watch-unavailable", ({ reason }) =>
        logger.info({ reason }, "cannot watch for other processes' writes; they are noticed by polling only"),
      ),
    );
  }
  const supervisor = options.supervisor?.events;
  if (supervisor !== undefined) {
    offs.push(
      supervisor.on("task:run-started", ({ taskId, persona, attempt }) => taskLogger(logger, { taskId, persona, attempt }).debug("task started")),
      supervisor.on("task:run-finished", ({ taskId, persona, attempt, durationMs, outcome, errorCode, errorMessage }) =>
        taskLogger(logger, { taskId, persona, attempt }).info(
          {
            outcome,
            durationMs: Math.round(durationMs),
            // A code alone does not say what went wrong: the message goes with it.
            ...(errorCode === undefined ? {} : { errorCode }),
            ...(errorMessage === undefined ? {} : { error: errorMessage }),
          },
          "task finished",
        ),
      ),
      supervisor.on("lease:renewed", ({ count, lost }) => (lost > 0 ? logger.warn({ renewed: count, lost }, "leases lost at renewal") : undefined)),
    );
  }
  return () => {
    for (const off of offs.splice(0)) off();
  };
}
