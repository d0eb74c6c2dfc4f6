import type { Store, StoreEventName } from "../store/index.js";

/** How often to look for other processes' writes while an agent waits in claim_task, in ms. */
export const CHANGE_POLL_INTERVAL_MS_DEFAULT = 250;
/** Longest a waiter sleeps without looking again, whatever it heard, in ms. */
export const RECHECK_INTERVAL_MS_DEFAULT = 1_000;

/** In-process store events after which a task may have become ready. */
const WAKE_EVENTS: StoreEventName[] = [
  "task:enqueued",
  "task:ready",
  "claim:reopened",
  "task:released",
  "task:retried",
  "task:retrying",
  "lease:expired",
];

/**
 * Wakes agents waiting in claim_task (up to waitMs) when a task may have become
 * ready. Sources:
 *  - in-process store events (this process enqueued, completed, released …);
 *  - in mode "data-version" (`roster mcp`, where nothing else reads the flag):
 *    other processes' writes, seen by `store.hasExternalChanges()` (PRAGMA
 *    data_version), checked at once when the store's file watch fires and on ONE
 *    timer shared by all waiters, only while someone waits, plus a recheck every
 *    RECHECK_INTERVAL_MS;
 *  - in mode "recheck" (beside a supervisor, as in `roster start --mcp-port`): a
 *    recheck every pollIntervalMs and no hasExternalChanges call at all, because
 *    that flag is consume-once per store and the supervisor's waker needs it.
 * A wake-up is only a hint; the caller reads, then claims atomically.
 */
export type ExternalChangeMode = "data-version" | "recheck";

export class ChangeFeed {
  private readonly waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private unwatch: (() => void) | null = null;
  private polling = false;
  private readonly unsubscribe: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly options: { pollIntervalMs?: number; recheckIntervalMs?: number; mode?: ExternalChangeMode } = {},
  ) {
    const pollIntervalMs = options.pollIntervalMs ?? CHANGE_POLL_INTERVAL_MS_DEFAULT;
    if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 1) throw new RangeError("options.pollIntervalMs must be a positive integer");
    for (const name of WAKE_EVENTS) this.unsubscribe.push(store.events.on(name, () => this.wakeAll()));
  }

  /**
   * Resolves after a possible change, after `timeoutMs`, or when `signal` aborts,
   * whichever is first. Never rejects.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.stopped || timeoutMs <= 0 || signal?.aborted) return Promise.resolve();
    const recheckMs =
      this.options.mode === "recheck"
        ? (this.options.pollIntervalMs ?? CHANGE_POLL_INTERVAL_MS_DEFAULT)
        : (this.options.recheckIntervalMs ?? RECHECK_INTERVAL_MS_DEFAULT);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timeout);
        signal?.removeEventListener("abort", done);
        this.waiters.delete(done);
        if (this.waiters.size === 0) this.stopPolling();
        resolve();
      };
      const timeout = setTimeout(done, Math.min(timeoutMs, recheckMs));
      signal?.addEventListener("abort", done, { once: true });
      this.waiters.add(done);
      this.startPolling();
    });
  }

  /** Wakes every waiter now and stops listening; later waits return at once. */
  stop(): void {
    this.stopped = true;
    for (const off of this.unsubscribe.splice(0)) off();
    this.wakeAll();
    this.stopPolling();
  }

  private wakeAll(): void {
    for (const done of [...this.waiters]) done();
  }

  private startPolling(): void {
    if (this.timer !== null || this.options.mode === "recheck") return;
    const interval = this.options.pollIntervalMs ?? CHANGE_POLL_INTERVAL_MS_DEFAULT;
    this.timer = setInterval(() => void this.poll(), interval);
    this.timer.unref();
    this.unwatch = this.store.watchExternalChanges(() => void this.poll());
  }

  private stopPolling(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    this.unwatch?.();
    this.unwatch = null;
  }

  private async poll(): Promise<void> {
    if (this.polling || this.waiters.size === 0) return;
    this.polling = true;
    try {
      // Only writes that may ready a task matter to a waiting claim: on PostgreSQL, while the store LISTENs,
      // other hosts' heartbeats and progress no longer wake every waiter (Store.hasExternalChanges).
      if (await this.store.hasExternalChanges({ wakeUpsOnly: true })) this.wakeAll();
    } catch {
      // A failed check (database closing) only means no early wake-up; waiters still
      // time out and re-read. Nothing to report to the agent.
      this.wakeAll();
    } finally {
      this.polling = false;
    }
  }
}
