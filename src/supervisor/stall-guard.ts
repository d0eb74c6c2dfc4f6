import type { Clock } from "../clock.js";
import { IntervalService } from "../service.js";
import type { Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";
import type { SupervisorEventBus } from "./events.js";

/**
 * Room for a claim to be tried and commit, in ms, on top of two poll intervals:
 * the stall bound is 2 × pollIntervalMs + STALL_CLAIM_ALLOWANCE_MS.
 */
export const STALL_CLAIM_ALLOWANCE_MS = 1_000;

export interface StallGuardProducer {
  readonly id: string;
  /** How many it would claim given `free` slots (0: its concurrency or the supervisor's slots are full). */
  want(free: number): number;
  /** Monotonic time of its last claim attempt (successful or not), or -Infinity. */
  readonly lastClaimAttemptAt: number;
}

export interface StallGuardHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly monotonic: () => number;
  producers(): readonly StallGuardProducer[];
  /** The supervisor's free slots now. */
  free(): number;
  /**
   * Whether the supervisor claims at all now: false while its database does not answer its
   * writes (src/supervisor/connection.ts), when no claim is tried on purpose and that outage is
   * reported as such. Absent: always.
   */
  canClaim?(): boolean;
  /** Where it says the age of the ready task a claim would take next (ready:oldest) and a stall (stall:detected). */
  readonly events: SupervisorEventBus;
  readonly logger: Logger;
  /** A ready task was seen with a free slot: claim for its persona. */
  wake(personas: readonly string[]): void;
  error(where: string, error: Error): void;
}

/**
 * The stall guard (docs/ARCHITECTURE.md, rule 13): once per poll interval it asks,
 * for every persona served, which ready task a claim would take next. With a free
 * slot for that persona it wakes the persona's producer (so a missed wake-up heals
 * within a poll), and when the same task has been seen ready beside a free slot
 * for longer than the bound with no claim tried for its persona meanwhile, it
 * reports a stall. The bound is judged on this process's monotonic clock, from its
 * own first sighting, never from timestamps another process wrote. While the supervisor
 * claims nothing because its database does not take its writes (canClaim), nothing is
 * woken or reported, and a wait counts from the first check after claims resume; after
 * a gap between checks longer than the bound (the process was stopped or its event loop
 * held), from the first check after the gap.
 *
 * Modes (IntervalService): stopped → ticking (a check every pollIntervalMs, one at a
 * time) → stopped.
 */
export class StallGuard extends IntervalService {
  readonly name = "stallGuard";
  readonly boundMs: number;
  private readonly seen = new Map<string, { taskId: number; since: number; reported: boolean }>();
  /** Monotonic time of the last check's start, or null before the first. */
  private lastCheckAt: number | null = null;

  constructor(
    private readonly host: StallGuardHost,
    pollIntervalMs: number,
  ) {
    super((where, error) => host.error(where, error), pollIntervalMs);
    this.boundMs = 2 * pollIntervalMs + STALL_CLAIM_ALLOWANCE_MS;
  }

  protected override get where(): string {
    return "stallGuard.check";
  }

  /** One check now (or the one running). */
  check(): Promise<void> {
    return this.tick();
  }

  protected async run(): Promise<void> {
    const now = this.host.clock.now();
    const woken: string[] = [];
    // Checks more than a bound apart: this process itself did not run (stopped, SIGSTOP, or its
    // event loop held), so it tried no claim and checked nothing meanwhile. A wait counts only
    // while it runs; it is judged afresh from this check.
    const startedAt = this.host.monotonic();
    if (this.lastCheckAt !== null && startedAt - this.lastCheckAt > this.boundMs) this.seen.clear();
    this.lastCheckAt = startedAt;
    for (const producer of this.host.producers()) {
      const head = await this.host.store.tasks.oldestReady({ persona: producer.id, now });
      this.host.events.emit("ready:oldest", { persona: producer.id, ageSeconds: head === null ? 0 : Math.max(0, now - head.readySince) / 1_000 });
      // While claims are off (the database does not take this process's writes), a wait is not a
      // stall: the bound starts again from the first check after they are back on.
      if (head === null || this.host.canClaim?.() === false || producer.want(this.host.free()) <= 0) {
        this.seen.delete(producer.id);
        continue;
      }
      woken.push(producer.id);
      const mono = this.host.monotonic();
      const seen = this.seen.get(producer.id);
      if (seen === undefined || seen.taskId !== head.taskId) {
        this.seen.set(producer.id, { taskId: head.taskId, since: mono, reported: false });
        continue;
      }
      const waitedMs = mono - seen.since;
      const triedSince = producer.lastClaimAttemptAt >= seen.since;
      if (waitedMs > this.boundMs && !triedSince && !seen.reported) {
        seen.reported = true;
        const stall = { persona: producer.id, taskId: head.taskId, waitedMs: Math.round(waitedMs), boundMs: this.boundMs };
        this.host.logger.warn(stall, "ready task waited past the stall bound beside a free slot with no claim tried");
        this.host.events.emit("stall:detected", stall);
      }
    }
    if (woken.length > 0) this.host.wake(woken);
  }
}
