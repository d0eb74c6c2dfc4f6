import type { Clock } from "../clock.js";
import { resolve } from "node:path";
import { RosterError } from "../errors.js";
import { assertModulePaths, toAdapterPersona } from "../personas/load.js";
import type { WorkerPoolOptions } from "../pool/pool-types.js";
import type { Config } from "../config.js";
import type { Logger } from "../logging/logger.js";
import type { Persona } from "../personas/schema.js";
import type { DatabaseIdentity, Store } from "../store/index.js";
import type { AbortKind } from "./run.js";

/**
 * An attempt that settles within this long after dispatch goes claimed →
 * completed without its own start write (the start is folded into the
 * settlement); a longer one gets `in_progress` with started_at = its dispatch
 * time. Saves one transaction per short task. In ms.
 */
export const START_FOLD_MS_DEFAULT = 20;
/** After the shutdown aborts, how long to wait beyond the abort grace before terminating every thread, in ms. */
export const SHUTDOWN_FORCE_MS = 1_000;

export interface SupervisorOptions {
  store: Store;
  /** The store's identity (store.maintenance.identity()), for what adapters name outside it; absent, agent worktrees keep the names without it. */
  database?: DatabaseIdentity;
  /** The personas to serve: one producer each. */
  personas: Persona[];
  /** concurrency, threads, pollIntervalMs, reapIntervalMs, shutdownGraceMs, maxPayloadBytes, personasDir, allowAbsoluteModules, logLevel. */
  config: Config;
  clock?: Clock;
  logger?: Logger;
  /** Stop once nothing is pending, waiting, running or scheduled in the database. */
  exitWhenIdle?: boolean;
  /** After an abort, how long an adapter gets before its thread is terminated, in ms. */
  abortGraceMs?: number;
  startFoldMs?: number;
  progressFlushMs?: number;
  /** Most batchable tasks per pool message. */
  batchSize?: number;
  agentName?: string;
  /** The monotonic clock (ms, any origin) the stall guard judges waits on; default performance.now. */
  monotonic?: () => number;
  /** Follow changes of config.personasDir and of the personas table while running (default true). */
  reloadPersonas?: boolean;
  /** How often the reloader looks, in ms (PERSONA_RELOAD_MS_DEFAULT). */
  personaReloadMs?: number;
  /**
   * Serve this one task only (`roster run`): it is claimed by id (tasks.claimById), never
   * another task of its persona, and the supervisor stops once it is completed, failed or
   * cancelled. The services that act on other tasks (reaper, scheduler, stall guard,
   * persona reloader) do not run.
   */
  taskId?: number;
  /** How the supervisor's agent row is named (default: a `supervisor` agent named for host and pid). */
  agent?: { name: string; kind: string; personaId?: string };
  /** false: a failed attempt is the last (`roster run --no-retry`); its error is recorded as not retryable. Default true. */
  retryFailures?: boolean;
}

export interface RunningStat {
  taskId: number;
  persona: string;
  title: string;
  attempt: number;
  startedAt: number;
  progress: number | null;
  message: string | null;
  aborting: AbortKind | null;
}

/** What the supervisor says of itself (Supervisor.stats): the metrics, the live status, /healthz. */
export interface SupervisorStats {
  /** Tasks running now (slots taken). */
  busy: number;
  /** Tasks that may run at once. */
  capacity: number;
  /** Epoch ms of the loop's last tick; null before the first. */
  lastTickAt: number | null;
  running: RunningStat[];
}

/** Checks what the supervisor's constructor is given (CONFIG_INVALID naming the field); returns startFoldMs. */
export function checkOptions(options: SupervisorOptions): number {
  const capacity = options.config.concurrency;
  const startFoldMs = options.startFoldMs ?? START_FOLD_MS_DEFAULT;
  if (!Number.isInteger(capacity) || capacity < 1) throw new RosterError("CONFIG_INVALID", `config.concurrency: must be a positive integer, got ${capacity}`);
  if (!Number.isInteger(startFoldMs) || startFoldMs < 0) throw new RosterError("CONFIG_INVALID", `startFoldMs: must be an integer >= 0, got ${startFoldMs}`);
  const ids = new Set<string>();
  for (const persona of options.personas) {
    if (ids.has(persona.id)) throw new RosterError("CONFIG_INVALID", `personas: "${persona.id}" is given twice`);
    ids.add(persona.id);
  }
  return startFoldMs;
}

/** The supervisor's worker pool: its threads and slots, and the personas its threads load (module paths checked first). */
export function poolOptions(options: SupervisorOptions, abortGraceMs: number): Omit<WorkerPoolOptions, "onReport" | "onError"> {
  const { config } = options;
  const personasDir = resolve(config.personasDir);
  assertModulePaths(options.personas, { personasDir, allowAbsoluteModules: config.allowAbsoluteModules });
  return {
    threads: config.threads,
    concurrency: config.concurrency,
    abortGraceMs,
    heapLimitMb: config.workerHeapLimitMb,
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    init: { personas: options.personas.map(toAdapterPersona), personasDir, allowAbsoluteModules: config.allowAbsoluteModules, maxPayloadBytes: config.maxPayloadBytes, logLevel: config.logLevel, ...(options.database === undefined ? {} : { database: options.database }) },
  };
}
