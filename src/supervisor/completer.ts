import type { Clock } from "../clock.js";
import { RosterError, coerceError } from "../errors.js";
import type { PoolOutcome } from "../pool/pool-types.js";
import type { ClaimedTask, Settlement, SettlementResult, Store } from "../store/index.js";
import type { JoinedPass } from "./claim-loop.js";
import type { Service } from "../service.js";
import type { RunOutcome } from "./events.js";
import type { RunningAttempt } from "./run.js";

/** Most settlements committed in one transaction. */
export const SETTLE_BATCH_MAX = 512;
/** Wait before retrying a batch whose commit failed (e.g. the database stayed locked), in ms. */
export const SETTLE_RETRY_MS = 200;

export interface CompleterHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly agentId: string;
  /** Called once per attempt after its settlement committed (or was discarded). */
  settled(run: RunningAttempt, outcome: RunOutcome, errorCode: string | undefined, errorMessage?: string): void;
  /** Called after each batch, once its attempts are settled. */
  batchDone(): void;
  /**
   * The claims to make in this batch's transaction, once its attempts are settled (the claim
   * loop's pass joined to it: ./claim-loop.ts, joinSettle), or null to settle alone.
   */
  joinClaims?(runs: readonly RunningAttempt[]): JoinedPass | null;
  error(where: string, error: Error): void;
}

interface Item {
  run: RunningAttempt;
  outcome: PoolOutcome;
  /** A commit of its batch failed unreachable (DATABASE_IO): it may have committed, its answer lost (recordedBefore). */
  maybeWritten?: boolean;
}

/** Turns a pool outcome into what the store should record, or null when the result is discarded. */
export function settlementFor(run: RunningAttempt, outcome: PoolOutcome): Settlement | null {
  // What the attempt reported spending (ctx.reportUsage, a shell usage line) goes with whatever is recorded.
  const lease = { taskId: run.task.id, leaseToken: run.task.leaseToken, ...("usage" in outcome && outcome.usage !== undefined ? { usage: outcome.usage } : {}) };
  // A lost lease (or a cancelled task) means someone else owns the task now: discard.
  if (run.abort === "lease-lost" || run.abort === "cancelled") return null;
  if (run.abort === "shutdown") return { kind: "release", ...lease, reason: "supervisor shutting down" };
  // Not the task's doing (docs/ARCHITECTURE.md rule 12): released uncounted if the lease is still ours, else refused (LEASE_LOST).
  if (run.abort === "db-unreachable") return { kind: "release", ...lease, reason: "its lease could not be renewed: the database was unreachable" };
  if (!outcome.ok && "released" in outcome) return { kind: "release", ...lease, reason: outcome.error.message };
  // Output is validated once, by the store's settle: a result or child list it cannot
  // take is recorded as a failed attempt with ADAPTER_OUTPUT_INVALID.
  if (outcome.ok) return { kind: "complete", ...lease, resultJson: outcome.resultJson, ...(outcome.children !== undefined && outcome.children.length > 0 ? { children: outcome.children } : {}) };
  return { kind: "fail", ...lease, error: outcome.error };
}

/**
 * What the store recorded, as its settlement result says. A completion can come back as
 * a failure (its output did not validate: ADAPTER_OUTPUT_INVALID), a failure as a release
 * (a provider's limit) or a parked task (it asked a person), uncounted as a release is.
 */
function outcomeOf(result: SettlementResult): RunOutcome {
  if (!result.ok) return "lease-lost";
  return result.outcome === "parked" ? "released" : result.outcome;
}

/** The failed attempt's error message, for the log line that carries its code. */
function errorMessageOf(settlement: Settlement): string | undefined {
  return settlement.kind === "fail" && typeof settlement.error.message === "string" ? settlement.error.message : undefined;
}

/** The code of what the store recorded: a counted failure says it (ADAPTER_OUTPUT_INVALID for a completion it refused); a failure given back uncounted keeps its own. */
function errorCodeOf(settlement: Settlement, result: SettlementResult): string | undefined {
  if (result.ok && (result.outcome === "retrying" || result.outcome === "failed")) return result.code;
  if (settlement.kind === "fail") return "code" in settlement.error ? settlement.error.code : undefined;
  return undefined;
}

/**
 * The completer: commits finished attempts in batches (store.tasks.settle), with the claim
 * loop's next claims in the same transaction when it has some to make (store.tasks.settleAndClaim).
 *
 * Modes: idle (nothing queued) → scheduled (a flush is queued for the next turn
 * of the event loop, so every outcome that arrives meanwhile joins it) →
 * flushing (one transaction per SETTLE_BATCH_MAX attempts) → idle. A failed
 * commit keeps its attempts queued and retries after SETTLE_RETRY_MS; their
 * leases are still renewed meanwhile. stop() waits for the queue to drain.
 */
export class Completer implements Service {
  readonly name = "completer";
  private queue: Item[] = [];
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | null = null;
  private flushing: Promise<boolean> | null = null;
  private stopped = false;

  constructor(private readonly host: CompleterHost) {}

  start(): void {
    this.stopped = false;
  }

  get pending(): number {
    return this.queue.length + (this.flushing === null ? 0 : 1);
  }

  add(run: RunningAttempt, outcome: PoolOutcome): void {
    this.queue.push({ run, outcome });
    this.schedule();
  }

  /** Commits everything queued, then resolves; gives up after a few failed commits (the reaper collects those leases). */
  async drain(): Promise<void> {
    let failures = 0;
    while ((this.queue.length > 0 || this.flushing !== null) && failures < 5) {
      if (this.flushing !== null) {
        await this.flushing;
        continue;
      }
      if (!(await this.flush())) {
        failures++;
        await new Promise((resolve) => setTimeout(resolve, SETTLE_RETRY_MS));
      }
    }
  }

  async stop(): Promise<void> {
    await this.drain();
    this.stopped = true;
    if (this.scheduled !== null) clearTimeout(this.scheduled as NodeJS.Timeout);
    this.scheduled = null;
  }

  private schedule(delayMs = 0): void {
    if (this.scheduled !== null || this.flushing !== null || this.stopped) return;
    this.scheduled =
      delayMs === 0
        ? setImmediate(() => {
            this.scheduled = null;
            void this.flush();
          })
        : setTimeout(() => {
            this.scheduled = null;
            void this.flush();
          }, delayMs);
  }

  private flush(): Promise<boolean> {
    if (this.flushing !== null) return this.flushing;
    const flushing = this.flushOnce();
    this.flushing = flushing;
    void flushing.then((ok) => {
      this.flushing = null;
      if (!ok) this.schedule(SETTLE_RETRY_MS);
      else if (this.queue.length > 0) this.schedule();
    });
    return flushing;
  }

  /**
   * A settlement tried again after an unreachable database (its first commit may have gone through,
   * the answer lost) and refused, LEASE_LOST: was it this supervisor's own first try that ended the
   * lease? Then that is what was recorded (the task's events say which), not a lost lease: a
   * completion committed while the server was paused was logged "lease lost: result discarded".
   */
  private async recordedBefore(run: RunningAttempt): Promise<RunOutcome> {
    try {
      const loss = await this.host.store.tasks.leaseLoss({ taskId: run.task.id, agentId: this.host.agentId });
      if (loss.by !== this.host.agentId) return "lease-lost";
      if (loss.reason === "completed") return "completed";
      if (loss.reason === "released") return "released";
      if (loss.reason === "failed") return loss.status === "failed" ? "failed" : "retrying";
    } catch (error) {
      this.host.error("completer.recordedBefore", coerceError(error));
    }
    return "lease-lost";
  }

  /** False when a commit failed; its attempts are back in the queue. */
  private async flushOnce(): Promise<boolean> {
    while (this.queue.length > 0) {
      const items = this.queue.splice(0, SETTLE_BATCH_MAX);
      const settlements: Settlement[] = [];
      const withSettlement: Array<{ item: Item; index: number }> = [];
      const discarded: Item[] = [];
      for (const item of items) {
        const settlement = settlementFor(item.run, item.outcome);
        if (settlement === null) discarded.push(item);
        else withSettlement.push({ item, index: settlements.push(settlement) - 1 });
      }
      let results: SettlementResult[] = [];
      let claimed: { pass: JoinedPass; lists: ClaimedTask[][] } | null = null;
      if (settlements.length > 0) {
        const tasks = this.host.store.tasks;
        const pass = tasks.settleAndClaim === undefined ? null : (this.host.joinClaims?.(items.map((item) => item.run)) ?? null);
        if (pass !== null) {
          try {
            const out = await tasks.settleAndClaim!({ settlements, now: this.host.clock.now(), claims: pass.claims });
            results = out.results;
            claimed = { pass, lists: out.claimed };
          } catch (error) {
            // Nothing was written: the claims go back to the claim loop, and the batch is settled alone at once.
            pass.failed();
            this.host.error("completer.settleAndClaim", coerceError(error));
          }
        }
        try {
          if (claimed === null) results = await tasks.settle({ settlements, now: this.host.clock.now() });
        } catch (error) {
          const e = coerceError(error);
          this.host.error("completer.settle", e);
          if (e instanceof RosterError && e.code === "DATABASE_IO") for (const item of items) item.maybeWritten = true;
          this.queue.unshift(...items);
          return false;
        }
      }
      for (const item of discarded) this.host.settled(item.run, "lease-lost", undefined);
      for (const { item, index } of withSettlement) {
        const settlement = settlements[index]!;
        const result = results[index]!;
        const outcome = !result.ok && item.maybeWritten === true ? await this.recordedBefore(item.run) : outcomeOf(result);
        this.host.settled(item.run, outcome, errorCodeOf(settlement, result), errorMessageOf(settlement));
      }
      // Dispatched once the batch's attempts have left: each producer then counts its persona's leases right.
      claimed?.pass.claimed(claimed.lists);
      this.host.batchDone();
    }
    return true;
  }
}
