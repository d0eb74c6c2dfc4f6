import type pg from "pg";
import { hostClock, type Clock } from "../../clock.js";

/** How often the offset to the server's clock is measured again, in ms (monotonic clocks drift by parts per million; the server's clock may be stepped). */
export const SERVER_CLOCK_REFRESH_MS = 30_000;
/** Round trips per measurement; the fastest one is kept (its midpoint is the least uncertain). */
const SAMPLES = 3;

/** The server's clock, read as epoch ms with microseconds (clock_timestamp: the moment the statement reads it, not its transaction's start). */
const SERVER_NOW_SQL = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms";

export interface ClockMeasurement {
  /** The server's clock minus this host's (config.clockOffsetMs included), in ms. */
  hostOffsetMs: number;
  /** The round trip of the sample kept, in ms: the measurement is good to half of it. */
  rttMs: number;
}

/**
 * The database server's clock, as seen from this process (issue 19, "one clock";
 * docs/postgres.md, "Time"): `now()` is this process's monotonic clock plus an
 * anchor measured against the server's `clock_timestamp()` at open and every
 * SERVER_CLOCK_REFRESH_MS, from the fastest of a few round trips (midpoint
 * rule: the error is at most half that round trip, well under 1 ms on a LAN).
 *
 * Anchored to the monotonic clock, not the wall clock: a host whose wall clock
 * is a minute off (or steps, NTP, a VM resume) gets the server's time all the
 * same, so every host stamps `run_at`, claims and audit times on one clock and a
 * delayed task falls due at the same moment for all of them. A failed refresh
 * keeps the last anchor (the drift of a few minutes is microseconds).
 *
 * Modes: measured (after open) → refreshing on a timer → stopped (close).
 */
export class ServerClock implements Clock {
  private anchor = 0;
  private last: ClockMeasurement = { hostOffsetMs: 0, rttMs: 0 };
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly monotonic: () => number = () => performance.now(),
  ) {}

  now(): number {
    return Math.round(this.monotonic() + this.anchor);
  }

  /** The last measurement: how far this host's wall clock is from the server's, and how sure that is. */
  measurement(): ClockMeasurement {
    return this.last;
  }

  /** Measures the anchor (throws the driver's error when the server cannot be reached). */
  async measure(): Promise<ClockMeasurement> {
    let best: { rtt: number; anchor: number; hostOffset: number } | null = null;
    for (let i = 0; i < SAMPLES; i++) {
      const sentAt = this.monotonic();
      const hostSent = hostClock.now();
      const rows = (await this.pool.query<{ ms: number }>(SERVER_NOW_SQL)).rows;
      const back = this.monotonic();
      const serverMs = Number(rows[0]!.ms);
      const rtt = back - sentAt;
      if (best === null || rtt < best.rtt) best = { rtt, anchor: serverMs - (sentAt + back) / 2, hostOffset: serverMs - (hostSent + rtt / 2) };
    }
    this.anchor = best!.anchor;
    this.last = { hostOffsetMs: Math.round(best!.hostOffset), rttMs: Math.round(best!.rtt * 1_000) / 1_000 };
    return this.last;
  }

  /** Measures again every intervalMs until stop(); failures keep the last anchor and are reported to onError. */
  start(intervalMs = SERVER_CLOCK_REFRESH_MS, onError: (error: unknown) => void = () => {}): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.measure().catch(onError), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
