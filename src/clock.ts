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
export const hostClock: Clock = { now: () => Date.now() + systemOffsetMs };

let reference: { owner: object; clock: Clock } | null = null;

/**
 * The clock every part of the process stamps and compares store times with: the
 * reference clock when one is set (an open PostgreSQL store sets the database
 * server's, so hosts whose clocks differ agree on `run_at` and due times: issue
 * 19, docs/postgres.md "Time"), else hostClock.
 */
export const systemClock: Clock = { now: () => (reference === null ? hostClock.now() : reference.clock.now()) };

/** Makes `clock` systemClock's reference, on behalf of `owner` (the last one set wins). */
export function setReferenceClock(owner: object, clock: Clock): void {
  reference = { owner, clock };
}

/** Drops the reference clock if `owner` set it (a store that closes); systemClock is hostClock again. */
export function clearReferenceClock(owner: object): void {
  if (reference?.owner === owner) reference = null;
}

/** Sets hostClock's (and so systemClock's, without a reference) offset (loadConfig does, from config.clockOffsetMs), in ms. */
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
