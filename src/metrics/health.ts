import { RosterError } from "../errors.js";
import { systemClock, type Clock } from "../clock.js";

/** How long the loop may go without a tick before /healthz says it stalled, in ms. */
export const HEALTH_STALE_AFTER_MS_DEFAULT = 30_000;

export interface HealthReport {
  ok: boolean;
  /** Short reason, served as JSON at /healthz. */
  status: "ok" | "stalled" | "not-started";
  lastTickAt: number | null;
  /** ms since the last tick; null before the first. */
  sinceLastTickMs: number | null;
  staleAfterMs: number;
}

/** What /healthz asks. */
export interface HealthCheck {
  check(): HealthReport;
}

export interface LoopHealthOptions {
  /** Epoch ms of the loop's last tick, or null before the first (e.g. `() => supervisor.stats().lastTickAt`). */
  lastTickAt: () => number | null;
  /** Injected so a test can move time past the threshold and see a stall. */
  clock?: Clock;
  /** Default HEALTH_STALE_AFTER_MS_DEFAULT. */
  staleAfterMs?: number;
}

/**
 * Healthy while the supervisor loop has ticked within `staleAfterMs`; stalled
 * (503) once it has not, and not-started (503) before the first tick. The loop
 * ticks on every poll interval even when idle, so silence means a stuck loop.
 */
export function createLoopHealth(options: LoopHealthOptions): HealthCheck {
  const clock = options.clock ?? systemClock;
  const staleAfterMs = options.staleAfterMs ?? HEALTH_STALE_AFTER_MS_DEFAULT;
  if (!Number.isInteger(staleAfterMs) || staleAfterMs <= 0) {
    throw new RosterError("CONFIG_INVALID", `health.staleAfterMs: must be a positive integer, got ${String(staleAfterMs)}`);
  }
  return {
    check() {
      const lastTickAt = options.lastTickAt();
      if (lastTickAt === null) return { ok: false, status: "not-started", lastTickAt, sinceLastTickMs: null, staleAfterMs };
      const sinceLastTickMs = Math.max(0, clock.now() - lastTickAt);
      const ok = sinceLastTickMs <= staleAfterMs;
      return { ok, status: ok ? "ok" : "stalled", lastTickAt, sinceLastTickMs, staleAfterMs };
    },
  };
}
