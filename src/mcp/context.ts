import { RosterError } from "../errors.js";
import { systemClock, type Clock } from "../clock.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";
import { LeaseReturns, SESSION_END_RETRY_MS_DEFAULT } from "./give-back.js";
import { LeaseBook } from "./leases.js";
import { SKIP_MS_DEFAULT, SkipBook } from "./session.js";
import { PERSONA_POLL_MS_DEFAULT, PersonaWatch } from "./tools/personas.js";
import { ChangeFeed, type ExternalChangeMode } from "./wait.js";

export const MCP_PROFILES = ["planner", "worker", "all"] as const;
export type McpProfile = (typeof MCP_PROFILES)[number];

/** A dependency's result longer than this (JSON characters) reaches a claim cut, with its full size; read_task pages the rest. */
export const RESULT_CUT_CHARS_DEFAULT = 2_000;

/**
 * What every MCP session of one process shares: the store, the clock, the leases
 * handed out (for heartbeat's lost list) and the change feed that wakes waiting
 * claims. One per process; the stdio server has one session, the HTTP server many.
 */
export interface McpContext {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly leases: LeaseBook;
  /** Reaped leases agents give back (./give-back.ts). */
  readonly returns: LeaseReturns;
  /** A session's last writes are retried this long while the database is unreachable, in ms. */
  readonly sessionEndRetryMs: number;
  /** Aborted when the process stops serving: from then on a session's last writes are tried once. */
  readonly stopping: AbortController;
  readonly changes: ChangeFeed;
  /** Agent ids bound to an open session of this process (one session per agent). */
  readonly boundAgents: Set<string>;
  /** Tasks agents skipped ("not for me"), kept from them for skipMs. */
  readonly skips: SkipBook;
  readonly skipMs: number;
  /** Dependency results in a claim are cut to this many JSON characters. */
  readonly resultCutChars: number;
  /** Tells open sessions of persona changes, so their prompts follow. */
  readonly personaWatch: PersonaWatch;
}

export interface McpContextOptions {
  store: Store;
  clock?: Clock;
  logger?: Logger;
  /** How often a waiting claim looks for other processes' writes, in ms. Default 250. */
  pollIntervalMs?: number;
  /**
   * "data-version" (default): poll store.hasExternalChanges(); only when nothing else
   * in the process reads that consume-once flag. "recheck": re-read every pollIntervalMs
   * instead (beside a supervisor).
   */
  externalChanges?: ExternalChangeMode;
  /** Dependency results in a claim are cut to this many JSON characters. Default RESULT_CUT_CHARS_DEFAULT. */
  resultCutChars?: number;
  /** How long release_task with skip keeps a task from the agent that skipped it, in ms. Default SKIP_MS_DEFAULT (10 min). */
  skipMs?: number;
  /** How often open sessions look for persona changes, in ms. Default PERSONA_POLL_MS_DEFAULT (5 s). */
  personaPollMs?: number;
  /**
   * How long an ended session's agent deregistration and give-backs are retried while the
   * database is unreachable, in ms. Default SESSION_END_RETRY_MS_DEFAULT (5 min).
   */
  sessionEndRetryMs?: number;
}

export function createMcpContext(options: McpContextOptions): McpContext {
  const resultCutChars = options.resultCutChars ?? RESULT_CUT_CHARS_DEFAULT;
  if (!Number.isInteger(resultCutChars) || resultCutChars < 100) {
    throw new RosterError("CONFIG_INVALID", `resultCutChars: must be an integer of at least 100, got ${String(resultCutChars)}`, { details: { field: "resultCutChars" } });
  }
  const skipMs = options.skipMs ?? SKIP_MS_DEFAULT;
  if (!Number.isInteger(skipMs) || skipMs < 0) {
    throw new RosterError("CONFIG_INVALID", `skipMs: must be a non-negative integer of ms, got ${String(skipMs)}`, { details: { field: "skipMs" } });
  }
  const sessionEndRetryMs = options.sessionEndRetryMs ?? SESSION_END_RETRY_MS_DEFAULT;
  if (!Number.isInteger(sessionEndRetryMs) || sessionEndRetryMs < 0) {
    throw new RosterError("CONFIG_INVALID", `sessionEndRetryMs: must be a non-negative integer of ms, got ${String(sessionEndRetryMs)}`, { details: { field: "sessionEndRetryMs" } });
  }
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  return {
    boundAgents: new Set(),
    skips: new SkipBook(),
    skipMs,
    resultCutChars,
    personaWatch: new PersonaWatch(options.store, options.personaPollMs ?? PERSONA_POLL_MS_DEFAULT),
    store: options.store,
    clock,
    logger,
    leases: new LeaseBook(),
    returns: new LeaseReturns(options.store, clock, logger),
    sessionEndRetryMs,
    stopping: new AbortController(),
    changes: new ChangeFeed(options.store, {
      ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
      ...(options.externalChanges !== undefined ? { mode: options.externalChanges } : {}),
    }),
  };
}

export function parseProfile(value: string): McpProfile {
  if ((MCP_PROFILES as readonly string[]).includes(value)) return value as McpProfile;
  throw new RosterError("VALIDATION", `profile: must be one of ${MCP_PROFILES.join(", ")}, got "${value}"`, { details: { field: "profile" } });
}
