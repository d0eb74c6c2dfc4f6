import { systemClock, type Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { RunExtension } from "../main.js";
import { TASK_STATES, type Counts, type Store, type TaskState } from "../store/index.js";
import { duration } from "../progress/summary.js";

const UNFINISHED: readonly TaskState[] = ["waiting", "pending", "claimed", "in_progress"];

/** What the demo did, from its tree's counts; null while any of it is unfinished. */
export function demoSummary(counts: Counts, options: { elapsedMs: number; retries: number; rootId: number }): string | null {
  const total = (state: TaskState): number => Object.values(counts).reduce((sum, states) => sum + (states[state] ?? 0), 0);
  if (UNFINISHED.some((state) => total(state) > 0)) return null;
  const all = TASK_STATES.reduce((sum, state) => sum + total(state), 0);
  const perPersona = Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([persona, states]) => `${Object.values(states).reduce((s, n) => s + (n ?? 0), 0)} ${persona}`)
    .join(", ");
  const outcome =
    total("completed") === all
      ? "all completed"
      : [`${total("completed")} completed`, ...(["failed", "cancelled", "blocked"] as const).filter((s) => total(s) > 0).map((s) => `${total(s)} ${s}`)].join(", ");
  const retries = options.retries > 0 ? `; ${options.retries} attempts failed on purpose (the flaky implementer) and were retried after a backoff` : "";
  return (
    `demo finished in ${duration(options.elapsedMs)}: a goal planned into ${all} tasks (${perPersona}), ${outcome}${retries}. ` +
    `Try next: \`roster ls\`, \`roster show ${options.rootId}\`, \`roster events ${options.rootId + 1}\`, ` +
    "or write a persona of your own in personas/ (see the README's Persona files). Ctrl-C stops the supervisor."
  );
}

/**
 * The demo's narration for `roster start --demo`: when the database was not
 * empty, one line saying why the demo was not seeded; otherwise, once every task
 * of the demo goal's tree has finished, one line saying what happened and what
 * to try next. Watches the store's events; a check reads the tree's grouped
 * counts (one query), at most one at a time.
 */
export function demoReport(options: { logger: Logger; dbPath: string; clock?: Clock }): RunExtension {
  return async (ctx) => {
    const { logger } = options;
    const clock = options.clock ?? systemClock;
    if (ctx.demoTaskId === null) {
      const counts = await ctx.store.tasks.counts();
      const tasks = Object.values(counts).reduce((sum, states) => sum + Object.values(states).reduce((s, n) => s + (n ?? 0), 0), 0);
      logger.warn(
        { db: options.dbPath, tasks },
        `demo not seeded: ${options.dbPath} already holds ${tasks} task(s), and the demo only starts on an empty database; ` +
          "run `roster start --demo --db demo.db` for a fresh one, or `roster status` to see what is here",
      );
      return;
    }
    const rootId = ctx.demoTaskId;
    const startedAt = clock.now();
    let retries = 0;
    let done = false;
    let checking: Promise<void> | null = null;
    let again = false;
    const check = (): Promise<void> => {
      if (done) return Promise.resolve();
      if (checking !== null) {
        again = true;
        return checking;
      }
      checking = ctx.store.tasks
        .counts({ rootId })
        .then((counts) => {
          const line = demoSummary(counts, { elapsedMs: clock.now() - startedAt, retries, rootId });
          if (line !== null && !done) {
            done = true;
            logger.info({ rootId }, line);
          }
        })
        .catch((error: unknown) => logger.debug({ err: coerceError(error) }, "demo summary check failed"))
        .finally(() => {
          checking = null;
          if (again) {
            again = false;
            void check();
          }
        });
      return checking;
    };
    const offs = [
      ctx.store.events.on("task:retrying", () => void retries++),
      ctx.store.events.on("task:completed", () => void check()),
      ctx.store.events.on("task:failed", () => void check()),
      ctx.store.events.on("task:cancelled", () => void check()),
    ];
    return {
      async stop() {
        await checking;
        await check();
        for (const off of offs) off();
      },
    };
  };
}
