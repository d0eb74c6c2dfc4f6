/**
 * The longest delay setTimeout and setInterval take, in ms: 2^31 − 1, about 24.8 days. Node
 * runs a longer one (or Infinity) after 1 ms and prints a TimeoutOverflowWarning, so a timer
 * that re-arms until its due time spins: a task delayed 30 days made an idle supervisor print
 * some 760 warnings a second at 20-30 % CPU. A delay that comes from data (a task's run_at or
 * timeout, a gate's reopening time, a payload) goes through setLongTimeout; an interval or a
 * flag that sets one is refused above this (docs/ARCHITECTURE.md, "Style notes for contributors").
 */
export const TIMER_MS_MAX = 2 ** 31 - 1;

/** A timer armed by setLongTimeout: cleared, unref'd and ref'd as a NodeJS.Timeout is. */
export interface LongTimeout {
  /** The callback will not run (a no-op once it has run or was cleared). */
  clear(): void;
  /** Does not keep the process alive, nor does any wait it arms later. */
  unref(): this;
  ref(): this;
}

/**
 * setTimeout for any delay: a wait past TIMER_MS_MAX is made of waits of at most TIMER_MS_MAX,
 * each armed when the one before ends, and the callback runs once the whole delay has passed
 * (counted by the waits themselves, each no shorter than asked). A negative or NaN delay runs
 * the callback on the next turn, as setTimeout's would; an infinite one never runs it.
 */
export function setLongTimeout(callback: () => void, delayMs: number): LongTimeout {
  return new LongTimer(callback, Number.isNaN(delayMs) ? 0 : Math.max(0, delayMs));
}

class LongTimer implements LongTimeout {
  private timer: NodeJS.Timeout | null = null;
  private referenced = true;

  constructor(
    private readonly callback: () => void,
    /** What is left of the delay after the wait now armed, in ms. */
    private remainingMs: number,
  ) {
    this.arm();
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  unref(): this {
    this.referenced = false;
    this.timer?.unref();
    return this;
  }

  ref(): this {
    this.referenced = true;
    this.timer?.ref();
    return this;
  }

  private arm(): void {
    const waitMs = Math.min(this.remainingMs, TIMER_MS_MAX);
    this.remainingMs -= waitMs;
    this.timer = setTimeout(() => {
      if (this.remainingMs > 0) return this.arm();
      this.timer = null;
      this.callback();
    }, waitMs);
    if (!this.referenced) this.timer.unref();
  }
}
