/**
 * The composition root (docs/ARCHITECTURE.md, style notes: "config → store → supervisor; signals. Nothing
 * else."). `roster start` calls runStart; so do tests and benchmarks.
 *
 * Hook points for the parts that run beside the supervisor (metrics server, live
 * status, MCP over HTTP): pass them as `extensions`. Each gets the RunContext once
 * the supervisor runs and may return something with stop(); they are stopped in
 * reverse order after the supervisor has stopped, before the database closes.
 */
import { systemClock, type Clock } from "./clock.js";
import type { Config } from "./config.js";
import { seedDemo } from "./demo.js";
import { coerceError } from "./errors.js";
import { createLogger, type Logger } from "./logging/logger.js";
import { logClockOffset } from "./logging/store-clock.js";
import type { Persona } from "./personas/schema.js";
import { openStoreWaiting, type Store } from "./store/index.js";
import { syncPersonas } from "./supervisor/personas.js";
import type { SupervisorOptions } from "./supervisor/options.js";
import { Supervisor } from "./supervisor/supervisor.js";
import { pruneWorkspacesAtStart } from "./workspace/startup.js";
import { missingCommand, missingWorkspace } from "./adapters/agent/preflight.js";
import { toAdapterPersona } from "./personas/load.js";

export interface RunContext {
  config: Config;
  store: Store;
  supervisor: Supervisor;
  personas: Persona[];
  logger: Logger;
  /** The demo goal's task id when --demo seeded it. */
  demoTaskId: number | null;
}

export interface Stoppable {
  stop(): Promise<void> | void;
}

export type RunExtension = (ctx: RunContext) => Promise<Stoppable | void> | Stoppable | void;

export interface RunStartOptions {
  /** Seed the demo goal into an empty database. */
  demo: boolean;
  /** Stop once nothing is pending, waiting, running or scheduled in the database. */
  exitWhenIdle: boolean;
  /** Aborting it stops the supervisor gracefully (like SIGTERM). */
  signal?: AbortSignal;
  logger?: Logger;
  /** Called once the supervisor runs (after the extensions started). */
  onReady?: (ctx: RunContext) => void;
  /** Metrics server, live status, MCP HTTP …: started after the supervisor, stopped before the database closes. */
  extensions?: RunExtension[];
  /** Install SIGINT/SIGTERM handlers (default true). */
  handleSignals?: boolean;
  clock?: Clock;
  /** Supervisor tuning for tests and benchmarks (abortGraceMs, batchSize …). */
  supervisor?: Pick<SupervisorOptions, "abortGraceMs" | "startFoldMs" | "progressFlushMs" | "batchSize" | "agentName">;
  /** Each store write transaction's duration, in ms (the metrics' histogram; StoreOptions.onTransaction). */
  onTransaction?: (name: string, durationMs: number) => void;
  /** Called once the store is open, before the supervisor starts, so metrics see its first events. */
  onStoreOpen?: (store: Store) => void;
}

const SIGNAL_EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Opens the store, syncs the personas (database with file fallback), seeds the
 * demo when asked, runs the supervisor until a signal, options.signal or (with
 * exitWhenIdle) an idle database stops it, then closes everything. Returns the
 * exit code (0 after a clean stop). A second SIGINT/SIGTERM exits at once.
 * Startup errors (config, personas, database) are thrown for the CLI to print.
 */
export async function runStart(config: Config, options: RunStartOptions): Promise<number> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const clock = options.clock ?? systemClock;
  const store = await openStoreWaiting(
    {
      path: config.dbPath,
      synchronous: config.synchronous,
      busyTimeoutMs: config.busyTimeoutMs,
      maxPayloadBytes: config.maxPayloadBytes,
      now: () => clock.now(),
      ...(options.onTransaction === undefined ? {} : { onTransaction: options.onTransaction }),
    },
    { logger },
  );
  options.onStoreOpen?.(store);
  logClockOffset(store, logger);
  const stoppables: Stoppable[] = [];
  const removeHandlers: Array<() => void> = [];
  let supervisor: Supervisor | null = null;
  try {
    const personas = await syncPersonas(store, config.personasDir, clock.now(), logger);
    // Worktrees of agent attempts a crash interrupted (src/workspace/startup.ts); live leases keep theirs.
    await pruneWorkspacesAtStart({ store, personas, now: clock.now(), logger });
    // A persona whose CLI cannot be found, or whose workspace's base is missing, runs nothing: said now, not only at its first task (src/adapters/agent/preflight.ts).
    for (const persona of personas) {
      const missing = persona.external === true ? null : (missingCommand(toAdapterPersona(persona)) ?? (await missingWorkspace(toAdapterPersona(persona)).catch(() => null)));
      if (missing !== null) logger.warn({ persona: persona.id, file: persona.sourcePath, command: missing.details?.command ?? null, base: missing.details?.base ?? null }, missing.message);
    }
    const demoTaskId = options.demo ? await seedDemo(store, { personas, now: clock.now() }) : null;
    if (demoTaskId !== null) logger.info({ taskId: demoTaskId }, "seeded the demo goal");
    const database = await store.maintenance.identity();
    supervisor = new Supervisor({ store, database, personas, config, clock, logger, exitWhenIdle: options.exitWhenIdle, ...options.supervisor });
    const running = supervisor;

    if (options.handleSignals !== false) {
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        const code = SIGNAL_EXIT_CODES[signal] ?? 1;
        if (signals > 2) process.exit(code);
        if (signals > 1) {
          // The operator's act: the leases held here go back uncounted in one bounded write (src/supervisor/exit-at-once.ts).
          logger.warn({ signal }, "second signal: exiting at once (the tasks running here are given back, uncounted; a third signal exits without that)");
          void running
            .releaseHeldAtExit()
            .then((given) => logger.info({ given }, "tasks given back at exit"))
            .catch((error: unknown) => logger.warn({ err: coerceError(error) }, "giving back the tasks at exit failed: the reaper will collect their leases"))
            .finally(() => process.exit(code));
          return;
        }
        logger.info({ signal }, "signal received: stopping gracefully (send it again to exit at once)");
        void running.stop(`signal ${signal}`);
      };
      for (const signal of ["SIGINT", "SIGTERM"] as const) {
        process.on(signal, onSignal);
        removeHandlers.push(() => process.off(signal, onSignal));
      }
    }
    if (options.signal !== undefined) {
      const onAbort = () => void running.stop("aborted");
      if (options.signal.aborted) onAbort();
      else {
        options.signal.addEventListener("abort", onAbort, { once: true });
        removeHandlers.push(() => options.signal?.removeEventListener("abort", onAbort));
      }
    }

    await supervisor.start();
    const ctx: RunContext = { config, store, supervisor, personas, logger, demoTaskId };
    for (const extension of options.extensions ?? []) {
      const stoppable = await extension(ctx);
      if (stoppable) stoppables.push(stoppable);
    }
    options.onReady?.(ctx);
    const reason = await supervisor.done;
    logger.info({ reason }, "roster start: finished");
    return 0;
  } finally {
    if (supervisor !== null) await supervisor.stop("closing");
    for (const stoppable of stoppables.reverse()) {
      try {
        await stoppable.stop();
      } catch (error) {
        logger.error({ err: coerceError(error) }, "an extension failed to stop");
      }
    }
    for (const remove of removeHandlers) remove();
    await store.close();
  }
}

