import type { Store } from "../store/index.js";
import type { Logger } from "./logger.js";

/**
 * On PostgreSQL every store time is the database server's (issue 19, "one clock";
 * docs/postgres.md, "Time"): says so once at start, with how far this host's clock
 * is off, so a skewed host shows in its log.
 */
export function logClockOffset(store: Store, logger: Logger): void {
  const offset = store.clockOffset?.();
  if (offset === undefined) return;
  logger.info({ hostOffsetMs: offset.hostOffsetMs, rttMs: offset.rttMs }, "store times follow the database server's clock (hostOffsetMs: server minus this host)");
}
