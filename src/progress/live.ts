import { RosterError, coerceError } from "../errors.js";
import { systemClock, type Clock } from "../clock.js";
import type { Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";
import { readStatus, renderStatus, statusFields, type StatusSnapshot } from "./summary.js";

/** How often the terminal view redraws, in ms: often enough that it keeps up with the log lines scrolling above it. */
export const LIVE_INTERVAL_MS_DEFAULT = 250;
/** How often the plain-lines mode logs the summary (only when it changed), in ms. */
export const LINES_INTERVAL_MS_DEFAULT = 10_000;

/** A terminal, or anything shaped like one (tests pass a fake with `columns`). */
export interface TerminalLike {
  write(text: string): unknown;
  columns?: number;
}

export interface LiveStatusOptions {
  store: Store;
  /**
   * `terminal`: a status block redrawn in place at the bottom of the terminal;
   * log lines written through `write` appear above it. `lines`: one plain log
   * line with the summary whenever it changed (stderr is a file or a pipe).
   */
  mode: "terminal" | "lines";
  /** Terminal mode: where the block is drawn (default process.stderr, where logs go too). */
  out?: TerminalLike;
  /** Lines mode: where the summary is logged. */
  logger?: Logger;
  intervalMs?: number;
  clock?: Clock;
  /** Told when a refresh failed (the store was closed under it …); the view keeps going. */
  onError?: (error: Error) => void;
}

/**
 * The live status of `roster start`: the same summary as `roster status`,
 * refreshed every interval. A service: `start()` begins refreshing, `stop()`
 * draws (or logs) the final summary and stops. In terminal mode it is also the
 * logger's destination, so log lines scroll above the block instead of
 * through it.
 *
 * Modes: idle (before start) → refreshing (a timer; at most one read in
 * flight, a tick that finds one running is skipped) → stopped.
 */
export class LiveStatus {
  private readonly store: Store;
  private readonly mode: "terminal" | "lines";
  private readonly out: TerminalLike;
  private readonly logger: Logger | undefined;
  private readonly intervalMs: number;
  private readonly clock: Clock;
  private readonly onError: ((error: Error) => void) | undefined;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private frame: string[] = [];
  /** Lines of the block now on screen. */
  private drawn = 0;
  private lastLogged = "";
  private stopped = false;

  constructor(options: LiveStatusOptions) {
    this.store = options.store;
    this.mode = options.mode;
    if (this.mode !== "terminal" && this.mode !== "lines") {
      throw new RosterError("CONFIG_INVALID", `live status mode: must be "terminal" or "lines", got "${String(options.mode)}"`);
    }
    if (this.mode === "lines" && options.logger === undefined) {
      throw new RosterError("CONFIG_INVALID", "live status: lines mode needs a logger");
    }
    this.out = options.out ?? process.stderr;
    this.logger = options.logger;
    this.intervalMs = options.intervalMs ?? (this.mode === "terminal" ? LIVE_INTERVAL_MS_DEFAULT : LINES_INTERVAL_MS_DEFAULT);
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < 10) {
      throw new RosterError("CONFIG_INVALID", `live status intervalMs: must be an integer >= 10, got ${String(this.intervalMs)}`);
    }
    this.clock = options.clock ?? systemClock;
    this.onError = options.onError;
  }

  start(): void {
    if (this.timer !== null || this.stopped) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    // The view never keeps the process alive on its own.
    this.timer.unref();
  }

  /** Refreshes once more (the final summary), then stops. Leaves the last block on screen. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
    await this.refresh();
    this.stopped = true;
    this.drawn = 0;
  }

  /** Stops without a final read (the store is already closed). */
  dispose(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
  }

  /** A LineSink: a log line printed above the block, which is then redrawn. */
  write(line: string): boolean {
    if (this.mode !== "terminal" || this.stopped) {
      this.out.write(line);
      return true;
    }
    this.erase();
    this.out.write(line.endsWith("\n") ? line : `${line}\n`);
    this.draw();
    return true;
  }

  /** Reads and shows the summary once; resolves when it is on screen (or logged). */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.inFlight !== null) return this.inFlight;
    this.inFlight = readStatus(this.store, { now: this.clock.now() })
      .then((snapshot) => this.show(snapshot))
      .catch((error: unknown) => this.onError?.(coerceError(error)))
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private show(snapshot: StatusSnapshot): void {
    if (this.stopped) return;
    if (this.mode === "lines") {
      const fields = statusFields(snapshot);
      const key = JSON.stringify(fields);
      if (key === this.lastLogged) return;
      this.lastLogged = key;
      this.logger!.info(fields, "status");
      return;
    }
    const columns = this.out.columns;
    // A pseudo-terminal without a size reports 0 columns: do not cut then.
    this.frame = ["", ...renderStatus(snapshot, { maxWidth: columns === undefined || columns <= 0 ? undefined : Math.max(20, columns - 1) })];
    this.erase();
    this.draw();
  }

  private erase(): void {
    // Cursor to the start of the block's first line, then clear to the end of the screen.
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}F\x1b[0J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (this.frame.length === 0) return;
    this.out.write(`${this.frame.join("\n")}\n`);
    this.drawn = this.frame.length;
  }
}
