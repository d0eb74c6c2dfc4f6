import { RosterError } from "../errors.js";
import { systemClock, type Clock } from "../clock.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";
import { LeaseBook } from "./leases.js";
import { ChangeFeed, type ExternalChangeMode } from "./wait.js";

export const MCP_PROFILES = ["planner", "worker", "all"] as const;
export type McpProfile = (typeof MCP_PROFILES)[number];

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
  readonly changes: ChangeFeed;
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
}

export function createMcpContext(options: McpContextOptions): McpContext {
  return {
    store: options.store,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger(),
    leases: new LeaseBook(),
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
