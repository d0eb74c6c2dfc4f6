import type { Clock } from "../clock.js";
import { RosterError, coerceError } from "../errors.js";
import { budgetCrossing, budgetExhaustedError, spendOf, type Crossing } from "../policy/budget.js";
import type { ModelPrice } from "../policy/prices.js";
import type { AttemptBudget, AttemptUsage } from "../store/economics.js";
import type { PoolOutcome } from "../pool/pool-types.js";
import type { Store } from "../store/index.js";
import { isLive, type RunningAttempt } from "./run.js";

/** How old a running attempt's budget reading may be when a usage report is checked against it, in ms. */
export const BUDGET_REFRESH_MS_DEFAULT = 1_000;
/** How long the user's model prices are kept before they are read again, in ms. */
export const PRICES_REFRESH_MS_DEFAULT = 10_000;
/**
 * Longest wait for every attempt stopped by one crossing to come back before those that did
 * are settled anyway, in ms. The pool answers every aborted attempt within its abort grace
 * (it terminates a thread that does not stop), so this is only a safety net.
 */
export const CROSSING_SETTLE_WAIT_MS = 30_000;

/** The attempts one goal crossing stopped: their outcomes are settled together (see holdBack). */
interface StopGroup {
  waiting: Set<RunningAttempt>;
  ready: Array<{ run: RunningAttempt; outcome: PoolOutcome }>;
  flush: ((items: Array<{ run: RunningAttempt; outcome: PoolOutcome }>) => void) | null;
  timer: NodeJS.Timeout | null;
}

export interface BudgetWatchHost {
  readonly store: Store;
  readonly clock: Clock;
  /** Aborts the attempt with this reason (a BUDGET_EXHAUSTED RosterError): its process group is killed as on a timeout. */
  abortForBudget(run: RunningAttempt, reason: RosterError): void;
  error(where: string, error: Error): void;
}

interface Watched {
  run: RunningAttempt;
  tokens: number;
  /** USD: the source's own figure, else priced; 0 when the model has no price (token limits still count it). */
  costUsd: number;
  usage: AttemptUsage;
  budget: AttemptBudget | null;
  /** Clock time of the budget reading (-Infinity: none yet). */
  readAt: number;
  reading: Promise<void> | null;
  /** A check is due once the reading in flight lands. */
  recheck: boolean;
  /** Spend of attempts of the same task or goal that settled while this attempt's reading was in flight (added to it when it lands). */
  settledMeanwhile: Array<{ taskId: number; rootId: number | null; tokens: number; costUsd: number }>;
  crossed: boolean;
}

/**
 * The budget watch: checks each running attempt's streamed usage (REPORT_USAGE from
 * its worker thread) against its task's and its goal's budgets, and aborts the
 * attempt that reaches one (docs/economics.md, "Streaming usage and the in-flight
 * rule").
 *
 * Cheap by construction: no write per report. A report updates the attempt's
 * running total in memory; the budgets are read from the store (one read, the row
 * the settlement reads) when the attempt first reports and again when a report
 * finds the reading older than `refreshMs`, so a raise or another attempt's
 * settlement is seen within that time. A goal's spend is its settled spend plus the
 * running totals of every attempt of the goal held by this supervisor. A report
 * that reaches a limit is confirmed with a fresh reading before the abort. Nothing
 * of a running total is persisted until its attempt settles (its usage row, in the
 * settlement's transaction), so other processes see it only then.
 *
 * Modes per attempt: unread (no reading yet) → watched (checks each report) →
 * crossed (aborted; later reports are ignored) → forgotten (settled).
 */
export class BudgetWatch {
  private readonly watched = new Map<RunningAttempt, Watched>();
  private readonly groups = new Map<RunningAttempt, StopGroup>();
  private prices: Readonly<Record<string, ModelPrice>> = {};
  private pricesAt = Number.NEGATIVE_INFINITY;
  private pricesReading: Promise<void> | null = null;
  private unsupported = false;

  constructor(
    private readonly host: BudgetWatchHost,
    private readonly refreshMs = BUDGET_REFRESH_MS_DEFAULT,
    private readonly pricesRefreshMs = PRICES_REFRESH_MS_DEFAULT,
  ) {
    if (!Number.isFinite(refreshMs) || refreshMs < 0) throw new RosterError("CONFIG_INVALID", `budgetRefreshMs: must be a number of ms >= 0, got ${refreshMs}`);
  }

  /** The attempt's running total so far (the latest report replaces the earlier ones). */
  report(run: RunningAttempt, total: AttemptUsage): void {
    if (this.unsupported || !isLive(run)) return;
    let w = this.watched.get(run);
    if (w === undefined) {
      w = { run, tokens: 0, costUsd: 0, usage: {}, budget: null, readAt: Number.NEGATIVE_INFINITY, reading: null, recheck: false, settledMeanwhile: [], crossed: false };
      this.watched.set(run, w);
    }
    if (w.crossed) return;
    w.usage = total;
    this.price(w);
    const now = this.host.clock.now();
    if (now - this.pricesAt > this.pricesRefreshMs) void this.readPrices();
    if (now - w.readAt > this.refreshMs) {
      w.recheck = true;
      void this.read(w);
      // A stale reading still decides now (a raise is confirmed before any abort); none yet waits for the read.
      if (w.budget === null) return;
    }
    this.check(w);
  }

  /**
   * The attempt settled: its spend is in the store now, no longer in flight. The
   * other attempts of its task or goal add it to their reading at once (a reading
   * made before the settlement lacks it; one in flight may or may not hold it, so it
   * is added when it lands: counted twice at worst, which only brings the fresh
   * reading that confirms a crossing sooner).
   */
  forget(run: RunningAttempt): void {
    const gone = this.watched.get(run);
    this.watched.delete(run);
    if (gone === undefined || (gone.tokens === 0 && gone.costUsd === 0)) return;
    const spent = { taskId: run.task.id, rootId: gone.budget?.rootId ?? null, tokens: gone.tokens, costUsd: gone.costUsd };
    for (const w of this.watched.values()) {
      if (w.reading !== null) w.settledMeanwhile.push(spent);
      if (w.budget !== null) addSettled(w.budget, spent);
    }
  }

  /** Attempts watched now (for tests and stats). */
  get size(): number {
    return this.watched.size;
  }

  private price(w: Watched): void {
    const spend = spendOf(w.usage, this.prices);
    w.tokens = spend.tokens;
    w.costUsd = spend.costUsd;
  }

  private check(w: Watched): void {
    if (w.crossed || w.budget === null || !isLive(w.run)) return;
    const crossed = this.crossing(w);
    if (crossed === null) return;
    // Confirm with a fresh reading (a raise, a removal) before aborting; a reading made just now decides.
    if (this.host.clock.now() - w.readAt > 0) {
      w.recheck = true;
      void this.read(w, true);
      return;
    }
    this.abort(w, crossed);
  }

  /** The budget this attempt's report reached (task first, then goal: counting this supervisor's other attempts of the goal), or null. */
  private crossing(w: Watched): Crossing | null {
    const b = w.budget!;
    const others = { tokens: 0, costUsd: 0 };
    if (b.goal !== null) {
      for (const other of this.watched.values()) {
        if (other === w || other.budget?.rootId !== b.rootId) continue;
        others.tokens += other.tokens;
        others.costUsd += other.costUsd;
      }
    }
    return budgetCrossing(b, { tokens: w.tokens, costUsd: w.costUsd }, others);
  }

  /**
   * An attempt's outcome, before it goes to the completer: the attempts one goal crossing
   * stopped are held back until all of them are in, then `flush` gets them together, so they
   * settle in one transaction. Otherwise the first to settle could be given back (its own
   * spend leaves the goal under its limit) and claimed again before the others' spend puts
   * the goal's hold on. True when this outcome is held back.
   */
  holdBack(run: RunningAttempt, outcome: PoolOutcome, flush: (items: Array<{ run: RunningAttempt; outcome: PoolOutcome }>) => void): boolean {
    const group = this.groups.get(run);
    if (group === undefined) return false;
    this.groups.delete(run);
    group.waiting.delete(run);
    group.ready.push({ run, outcome });
    group.flush = flush;
    if (group.waiting.size === 0) this.release(group);
    return true;
  }

  private release(group: StopGroup): void {
    if (group.timer !== null) clearTimeout(group.timer);
    group.timer = null;
    for (const run of group.waiting) this.groups.delete(run);
    group.waiting.clear();
    const items = group.ready.splice(0);
    if (items.length > 0) group.flush?.(items);
  }

  private abort(w: Watched, c: Crossing): void {
    const victims = c.limit.scope === "task" ? [w] : [...this.watched.values()].filter((o) => o.budget?.rootId === w.budget!.rootId && !o.crossed);
    if (victims.length > 1) {
      const group: StopGroup = { waiting: new Set(victims.map((v) => v.run)), ready: [], flush: null, timer: null };
      group.timer = setTimeout(() => this.release(group), CROSSING_SETTLE_WAIT_MS);
      group.timer.unref();
      for (const v of victims) this.groups.set(v.run, group);
    }
    for (const v of victims) {
      v.crossed = true;
      const by = v === w ? "its usage" : `task ${w.run.task.id} attempt ${w.run.task.attempt}'s usage`;
      this.host.abortForBudget(v.run, budgetExhaustedError(v.run.task, c, by));
    }
  }

  private read(w: Watched, confirming = false): Promise<void> {
    if (w.reading !== null) return w.reading;
    const reading = (async () => {
      try {
        const budget = await this.host.store.economics.attemptBudget({ taskId: w.run.task.id });
        if (budget !== null) for (const spent of w.settledMeanwhile) addSettled(budget, spent);
        w.budget = budget;
        w.readAt = this.host.clock.now();
      } catch (error) {
        const e = coerceError(error);
        if (e instanceof RosterError && e.code === "NOT_SUPPORTED") {
          // A store without budgets: nothing to watch.
          this.unsupported = true;
          this.watched.clear();
          return;
        }
        this.host.error("budgetWatch.read", e);
      } finally {
        w.reading = null;
        w.settledMeanwhile = [];
      }
      if (w.recheck && this.watched.get(w.run) === w) {
        w.recheck = false;
        if (confirming) {
          const crossed = w.budget === null ? null : this.crossing(w);
          if (crossed !== null && !w.crossed && isLive(w.run)) this.abort(w, crossed);
        } else this.check(w);
      }
    })();
    w.reading = reading;
    return reading;
  }

  private async readPrices(): Promise<void> {
    if (this.pricesReading !== null) return this.pricesReading;
    this.pricesAt = this.host.clock.now();
    this.pricesReading = (async () => {
      try {
        this.prices = await this.host.store.economics.prices();
        for (const w of this.watched.values()) this.price(w);
      } catch (error) {
        this.host.error("budgetWatch.prices", coerceError(error));
      } finally {
        this.pricesReading = null;
      }
    })();
    return this.pricesReading;
  }
}

/** Adds a settled attempt's spend to a reading of the budgets it counts in (its task's, its goal's). */
function addSettled(budget: AttemptBudget, spent: { taskId: number; rootId: number | null; tokens: number; costUsd: number }): void {
  if (budget.task !== null && budget.task.key === String(spent.taskId)) {
    budget.task = { ...budget.task, spentTokens: budget.task.spentTokens + spent.tokens, spentUsd: budget.task.spentUsd + spent.costUsd };
  }
  if (budget.goal !== null && spent.rootId === budget.rootId) {
    budget.goal = { ...budget.goal, spentTokens: budget.goal.spentTokens + spent.tokens, spentUsd: budget.goal.spentUsd + spent.costUsd };
  }
}
