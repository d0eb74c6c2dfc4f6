import { coerceError } from "./errors.js";
import { TIMER_MS_MAX } from "./timers.js";

/** Where a long-running part reports a failure it survives: `where` names it ("reaper.tick"). The supervisor's goes to its event bus (`supervisor:error`). */
export type ErrorReport = (where: string, error: Error) => void;

/**
 * A long-running part (docs/ARCHITECTURE.md, style notes): `start` arms it,
 * `stop` disarms it and resolves once nothing of it runs any more. Both may be
 * called once each; `stop` without a `start` does nothing.
 */
export interface Service {
  /** Names it in error reports and in its owner's start/stop order. */
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/**
 * The skeleton every periodic service shares: one `tick` every `intervalMs` on a
 * timer that does not keep the process alive (unref: the supervisor's waker, or
 * an open server, does that), ticks that never overlap (a tick asked for while one
 * runs gets the running one), and a tick's failure reported through `report` with
 * the service's `where`, never thrown: the next tick tries again. `stop` clears
 * the timer and waits for a running tick.
 *
 * Modes: stopped → ticking → stopped.
 */
export abstract class IntervalService implements Service {
  abstract readonly name: string;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    protected readonly report: ErrorReport,
    private interval: number,
    /** Also tick once at start; `await start()` waits for it. */
    private readonly tickAtStart = false,
  ) {
    checkIntervalMs(interval);
  }

  /** What one tick does; a throw is reported as `${where}`. */
  protected abstract run(): Promise<void>;

  /** Names the tick's failures in reports (default `${name}.tick`). */
  protected get where(): string {
    return `${this.name}.tick`;
  }

  get intervalMs(): number {
    return this.interval;
  }

  get started(): boolean {
    return this.timer !== null;
  }

  start(): void | Promise<void> {
    if (this.timer !== null) return;
    this.arm();
    if (this.tickAtStart) return this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Ticks every `intervalMs` from now on (a running service re-arms its timer). */
  setIntervalMs(intervalMs: number): void {
    checkIntervalMs(intervalMs);
    this.interval = intervalMs;
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.arm();
  }

  /** One tick now, or the one running; never rejects. */
  tick(): Promise<void> {
    this.running ??= this.run()
      .catch((error: unknown) => this.report(this.where, coerceError(error)))
      .finally(() => (this.running = null));
    return this.running;
  }

  private arm(): void {
    this.timer = setInterval(() => void this.tick(), this.interval);
    this.timer.unref();
  }
}

/** An interval setInterval keeps: Node runs a longer one every 1 ms (src/timers.ts). */
function checkIntervalMs(intervalMs: number): void {
  if (!Number.isFinite(intervalMs) || intervalMs < 1 || intervalMs > TIMER_MS_MAX) {
    throw new RangeError(`intervalMs: must be a number from 1 to ${TIMER_MS_MAX}, got ${intervalMs}`);
  }
}

/**
 * Services started in a declared order and stopped in the reverse one. A start
 * that throws stops the ones already started (in reverse) before the error is
 * rethrown, so a failed start leaves nothing running. A stop that throws is
 * reported and the others still stop.
 */
export class ServiceGroup {
  private readonly started: Service[] = [];

  constructor(
    readonly order: readonly Service[],
    private readonly report: ErrorReport,
  ) {
    const names = new Set<string>();
    for (const service of order) {
      if (names.has(service.name)) throw new RangeError(`services: "${service.name}" is given twice`);
      names.add(service.name);
    }
  }

  async start(): Promise<void> {
    for (const service of this.order) {
      try {
        await service.start();
      } catch (error) {
        await this.stop();
        throw error;
      }
      this.started.push(service);
    }
  }

  /** Stops every started service, last started first. */
  async stop(): Promise<void> {
    for (let service = this.started.pop(); service !== undefined; service = this.started.pop()) {
      try {
        await service.stop();
      } catch (error) {
        this.report(`${service.name}.stop`, coerceError(error));
      }
    }
  }
}
