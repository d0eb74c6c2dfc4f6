import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Service } from "../service.js";
import type { ClaimParams, ClaimedTask } from "../store/index.js";
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
 * A pass may also ride on the completer's settle transaction (`joinSettle`: the store's
 * settleAndClaim), so a cycle of the supervisor (outcomes recorded, their room claimed again)
 * costs one commit. Such a joined claim runs beside the loop, not as its state: its slots are
 * reserved and its producers skipped by passes until it ends, so a settlement that waits (for
 * the write lock) holds back no other persona's claim.
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
  /** Slots asked for by claims not yet dispatched (a pass's claim awaiting its write, a joined claim): not free to another claim. */
  private reserved = 0;

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

  /** Free slots for a claim now: the supervisor's, less those claims in flight may fill. */
  private free(): number {
    return this.host.free() - this.reserved;
  }

  /**
   * Claims to make in the completer's next settle transaction (store.tasks.settleAndClaim):
   * those each wanting producer would make once that batch is settled (`freed`: the slots the
   * batch frees; `settling(producer)`: how many of the batch are its persona's), or null when
   * nobody wants any or claims must wait. The settle then goes alone, and its batchDone
   * requests a pass as before.
   */
  joinSettle(freed: number, settling: (producer: PersonaProducer) => number): JoinedPass | null {
    if (this.state === "stopped" || this.host.canClaim?.() === false) return null;
    const producers = this.host.producers();
    const n = producers.length;
    const first = this.roundRobin % Math.max(1, n);
    let free = this.free() + freed;
    const joined: Array<{ producer: PersonaProducer; limit: number; request: ReturnType<PersonaProducer["request"]> }> = [];
    for (let i = 0; i < n && free > 0; i++) {
      const producer = producers[(first + i) % n]!;
      if (!producer.wanting || producer.claiming) continue;
      const limit = producer.want(free, settling(producer));
      if (limit <= 0) continue;
      joined.push({ producer, limit, request: producer.request(limit) });
      // As if each took all it asks for: never more than the free slots in all.
      free -= limit;
    }
    if (joined.length === 0) return null;
    this.roundRobin++;
    const asked = joined.reduce((sum, j) => sum + j.limit, 0);
    this.reserved += asked;
    const passNow = this.host.clock.now();
    const end = (): void => {
      this.reserved -= asked;
      for (const { producer } of joined) producer.claiming = false;
    };
    return {
      claims: joined.map((j) => j.request.params),
      claimed: (lists) => {
        end();
        let drained = false;
        joined.forEach(({ producer, limit, request }, i) => {
          const claimed = request.took(lists[i] ?? []);
          if (claimed.length < limit) drained = true;
          // Once the loop has stopped, dispatch hands them back.
          if (claimed.length > 0) this.host.dispatch(producer, claimed);
        });
        this.host.ticked();
        if (drained && this.state !== "stopped") this.host.drained(passNow);
      },
      failed: () => {
        end();
        // Nothing was claimed and the producers are still dirty: a pass of the loop's own claims for them (and backs off if that fails too).
        this.request();
      },
    };
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
          if (!producer.wanting || producer.claiming) continue;
          const limit = producer.want(this.free());
          if (limit <= 0) continue;
          this.reserved += limit;
          let claimed: ClaimedTask[];
          try {
            claimed = await producer.claim(limit);
          } finally {
            this.reserved -= limit;
          }
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

/**
 * A claim joined to a settle transaction (ClaimLoop.joinSettle): `claims` go to
 * store.tasks.settleAndClaim; then `claimed` gets its lists, once the batch's attempts are
 * settled (so each producer counts its persona's leases right), or `failed` is called when
 * the transaction failed (nothing written).
 */
export interface JoinedPass {
  claims: ClaimParams[];
  claimed(lists: ClaimedTask[][]): void;
  failed(): void;
}
