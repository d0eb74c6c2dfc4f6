import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Service } from "../service.js";
import type { ClaimedTask } from "../store/index.js";
import type { PersonaProducer } from "./producer.js";
import { RETRY_BASE_MS, RETRY_MAX_MS } from "./waker.js";

export interface ClaimLoopHost {
  readonly clock: Clock;
  /** The producers served now (one per persona; the list changes on a persona reload). */
  producers(): readonly PersonaProducer[];
  /** Free slots across the supervisor now. */
  free(): number;
  /** Claimed attempts to run (or, once the loop has stopped, to hand back). */
  dispatch(producer: PersonaProducer, claimed: ClaimedTask[]): void;
  /** A claim came back short: look up the next run_at from `since`, the time the pass's claims were made. */
  drained(since: number): void;
  /** A pass ended (the loop is alive: loop:tick). */
  ticked(): void;
  /** False while claims must wait (the database is unreachable: ./connection.ts); the producers stay dirty for the request that follows. */
  canClaim?(): boolean;
  error(where: string, error: Error): void;
}

type LoopState = "stopped" | "idle" | "scheduled" | "claiming" | "claiming-again" | "backing-off";

/**
 * The claim loop: turns wake-ups (`request`) into claim passes, one at a time.
 * In a pass each dirty producer, in round-robin order from pass to pass, claims
 * `min(its persona's free concurrency, the supervisor's free slots)` in one
 * statement, and the claimed attempts are dispatched at once.
 *
 * States:
 *   stopped        — not started, or stopped: requests are ignored
 *   idle           — no pass scheduled or running
 *   scheduled      — a pass is queued for this turn's microtasks; requests meanwhile join it
 *   claiming       — a pass runs
 *   claiming-again — a request arrived during the pass: the pass goes round once more
 *   backing-off    — the last pass failed (a claim's write): the next runs after a backoff
 *                    (RETRY_BASE_MS doubling to RETRY_MAX_MS), or at once on a request, so a
 *                    failure never leaves the loop without a wake-up (docs/ARCHITECTURE.md, rule 13)
 * stop() waits for a running pass; what it claims after the stop is handed back by dispatch.
 */
export class ClaimLoop implements Service {
  readonly name = "claimLoop";
  private state: LoopState = "stopped";
  private roundRobin = 0;
  private failures = 0;
  private retry: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private soon: NodeJS.Immediate | null = null;

  constructor(private readonly host: ClaimLoopHost) {}

  /** Reads the state afresh (after an await, another call may have changed it). */
  private is(state: LoopState): boolean {
    return this.state === state;
  }

  /** A pass is running. */
  get claiming(): boolean {
    return this.state === "claiming" || this.state === "claiming-again";
  }

  /** Started and not stopped: claimed tasks are run, not handed back. */
  get accepting(): boolean {
    return this.state !== "stopped";
  }

  start(): void {
    if (this.state !== "stopped") return;
    this.state = "idle";
    this.request();
  }

  async stop(): Promise<void> {
    this.state = "stopped";
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    if (this.soon !== null) clearImmediate(this.soon);
    this.soon = null;
    await this.pass;
  }

  /** Some producer may have work, or a slot freed up: claim soon. */
  request(): void {
    switch (this.state) {
      case "claiming":
        this.state = "claiming-again";
        return;
      case "backing-off":
        if (this.retry !== null) clearTimeout(this.retry);
        this.retry = null;
        this.schedule();
        return;
      case "idle":
        this.schedule();
        return;
      default:
        return;
    }
  }

  /**
   * A slot came free (an attempt's outcome): claim after this turn's I/O callbacks, so the
   * outcomes the pool's threads report together free their slots for one claim, not one
   * claim each.
   */
  requestSoon(): void {
    if (this.soon !== null || this.state === "stopped") return;
    this.soon = setImmediate(() => {
      this.soon = null;
      this.request();
    });
  }

  private schedule(): void {
    this.state = "scheduled";
    queueMicrotask(() => {
      if (this.state !== "scheduled") return;
      if (this.host.canClaim?.() === false) this.state = "idle";
      else this.pass = this.run().finally(() => (this.pass = null));
    });
  }

  private async run(): Promise<void> {
    this.state = "claiming";
    let drained = false;
    let failed = false;
    // Every claim of this pass is made at this time or later (see Waker.rescheduleRunAt).
    const passNow = this.host.clock.now();
    try {
      do {
        if (this.is("claiming-again")) this.state = "claiming";
        const producers = this.host.producers();
        const n = producers.length;
        const first = this.roundRobin++ % Math.max(1, n);
        for (let i = 0; i < n && this.claiming; i++) {
          const producer = producers[(first + i) % n]!;
          if (!producer.wanting) continue;
          const limit = producer.want(this.host.free());
          if (limit <= 0) continue;
          const claimed = await producer.claim(limit);
          if (claimed.length < limit) drained = true;
          if (claimed.length > 0) this.host.dispatch(producer, claimed);
        }
      } while (this.is("claiming-again"));
      this.failures = 0;
    } catch (error) {
      failed = true;
      this.host.error("supervisor.claim", coerceError(error));
    } finally {
      this.host.ticked();
    }
    if (!this.claiming) return;
    if (failed) {
      // The producers that did not get to claim are still dirty: they claim on the retry.
      this.state = "backing-off";
      const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** this.failures++);
      this.retry = setTimeout(() => {
        this.retry = null;
        if (this.is("backing-off")) this.schedule();
      }, delay);
      return;
    }
    const again = this.is("claiming-again");
    this.state = "idle";
    if (drained) this.host.drained(passNow);
    if (again) this.request();
  }
}
