/** Time as the machine compares it: integer epoch milliseconds. Injected everywhere. */
export interface Clock {
  now(): number;
}

let systemOffsetMs = 0;

/**
 * The wall clock, shifted by config.clockOffsetMs (ROSTER_CLOCK_OFFSET_MS, 0 by
 * default): a fault to inject, so tests and the crash suite can run one process
 * with a clock that is off. Liveness never compares two processes' wall clocks
 * (docs/ARCHITECTURE.md, rule 14), so an offset must cost nothing but the
 * timestamps that process writes.
 */
export const systemClock: Clock = { now: () => Date.now() + systemOffsetMs };

/** Sets systemClock's offset (loadConfig does, from config.clockOffsetMs), in ms. */
export function setSystemClockOffset(offsetMs: number): void {
  systemOffsetMs = offsetMs;
}

/** A clock that only moves when told to; for tests of leases and backoff. */
export class ManualClock implements Clock {
  private current: number;

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  advance(ms: number): number {
    this.current += ms;
    return this.current;
  }

  set(epochMs: number): void {
    this.current = epochMs;
  }
}
