/**
 * What each running attempt of a worker thread has spent, as its adapter reports
 * it while it runs (docs/economics.md, "Streaming"). Two ways in:
 *
 * - `add` (ctx.reportUsage): an increment; calls add up (a module per model call,
 *   a shell script's `::roster:usage` lines);
 * - `setTotal` (ctx.reportUsageTotal): the attempt's running total so far, read
 *   from a cumulative source (an agent CLI's stream); each call replaces the last.
 *
 * The attempt's running total (the sum of both) leaves for the main thread in one
 * REPORT_USAGE message per attempt per turn of the event loop, however many
 * reports the turn held, so a chatty adapter costs one message per turn. Pure
 * bookkeeping: no SQLite here (docs/ARCHITECTURE.md, style notes: SQL lives in src/store/).
 */
import type { AttemptUsage } from "../store/economics.js";
import { addUsage, resultCarrier, validateUsage } from "../store/usage-values.js";
import type { TaskOutcome } from "./protocol.js";

interface Entry {
  added: AttemptUsage | undefined;
  streamed: AttemptUsage | undefined;
}

export class RunUsage {
  private readonly runs = new Map<number, Entry>();
  private readonly dirty = new Set<number>();
  private flushing = false;

  /** `send(runId, total)` posts one attempt's running total to the main thread. */
  constructor(private readonly send: (runId: number, total: AttemptUsage) => void) {}

  /** ctx.reportUsage: adds; throws VALIDATION for a report that is not usage. */
  add(runId: number, usage: unknown): void {
    const valid = validateUsage(usage);
    const entry = this.entry(runId);
    entry.added = addUsage(entry.added, valid);
    this.mark(runId);
  }

  /** ctx.reportUsageTotal: replaces the streamed total; throws VALIDATION for a report that is not usage. */
  setTotal(runId: number, usage: unknown): void {
    const valid = validateUsage(usage, "usage total");
    this.entry(runId).streamed = valid;
    this.mark(runId);
  }

  /**
   * The usage the attempt's outcome carries, and forgets the attempt: what it added
   * (as before streaming existed); else its streamed total when the outcome holds no
   * usage of its own (an agent CLI killed mid-run printed no final figures, so what it
   * streamed is all there is). An outcome whose result or error carries usage (the
   * CLI's final figures) is left to that.
   */
  settle(runId: number, outcome: TaskOutcome): TaskOutcome {
    const entry = this.runs.get(runId);
    this.runs.delete(runId);
    this.dirty.delete(runId);
    if (entry === undefined) return outcome;
    if (entry.added !== undefined) return { ...outcome, usage: entry.streamed === undefined ? entry.added : addUsage(entry.added, entry.streamed) };
    if (entry.streamed === undefined || carriesUsage(outcome)) return outcome;
    return { ...outcome, usage: entry.streamed };
  }

  private entry(runId: number): Entry {
    let entry = this.runs.get(runId);
    if (entry === undefined) this.runs.set(runId, (entry = { added: undefined, streamed: undefined }));
    return entry;
  }

  private mark(runId: number): void {
    this.dirty.add(runId);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      for (const id of this.dirty) {
        const entry = this.runs.get(id);
        if (entry === undefined) continue;
        const total = entry.added === undefined ? entry.streamed : entry.streamed === undefined ? entry.added : addUsage(entry.added, entry.streamed);
        if (total !== undefined) this.send(id, total);
      }
      this.dirty.clear();
    });
  }
}

function carriesUsage(outcome: TaskOutcome): boolean {
  const carrier = outcome.ok ? resultCarrier(outcome) : outcome.error.details;
  return carrier !== null && typeof carrier === "object" && !Array.isArray(carrier) && (carrier as { usage?: unknown }).usage != null;
}
