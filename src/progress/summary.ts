import { TASK_STATES, type Counts, type RunningTask, type Store, type TaskState } from "../store/index.js";

/**
 * The status summary people read: per persona, how many tasks are done out of
 * how many, with a bar; and each running task's progress fraction and message.
 * Built from two reads (the grouped counts and the running tasks), rendered as
 * plain lines that `roster status`, `--watch` and the live view of `roster start`
 * all share.
 */
export interface PersonaSummary {
  persona: string;
  /** Finished for good: completed + failed + cancelled. */
  done: number;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** Leased now: claimed + in_progress. */
  running: number;
  /** Ready or waiting on a retry's run_at. */
  pending: number;
  /** Epoch ms when the next pending task held back by its run_at (a retry's backoff, a delay) becomes ready; null when none is. */
  nextDueAt: number | null;
  waiting: number;
  blocked: number;
  /** Parked for a person (docs/humans-and-schedules.md): an approval, or an attempt's question. */
  awaitingApproval: number;
  awaitingInput: number;
}

export interface StatusSnapshot {
  /** Epoch ms of the read. */
  at: number;
  /** persona → state → number of tasks (states with none omitted). */
  counts: Counts;
  personas: PersonaSummary[];
  running: RunningTask[];
}

/** Running tasks shown at most; the rest are summed up in one line. */
export const RUNNING_SHOWN_DEFAULT = 20;

export async function readStatus(store: Store, options: { now: number; runningLimit?: number }): Promise<StatusSnapshot> {
  const counts = await store.tasks.counts();
  const running = await store.tasks.running({ limit: options.runningLimit ?? 1000 });
  const personas = summarize(counts);
  // One index seek per persona with pending tasks, so a delayed task does not read as ready.
  for (const p of personas) if (p.pending > 0) p.nextDueAt = await store.tasks.nextRunAt({ persona: p.persona, now: options.now });
  return { at: options.now, counts, personas, running };
}

export function summarize(counts: Counts): PersonaSummary[] {
  return Object.keys(counts)
    .sort()
    .map((persona) => {
      const n = (state: TaskState) => counts[persona]?.[state] ?? 0;
      const total = TASK_STATES.reduce((sum, state) => sum + n(state), 0);
      return {
        persona,
        done: n("completed") + n("failed") + n("cancelled"),
        total,
        completed: n("completed"),
        failed: n("failed"),
        cancelled: n("cancelled"),
        running: n("claimed") + n("in_progress"),
        pending: n("pending"),
        nextDueAt: null,
        waiting: n("waiting"),
        blocked: n("blocked"),
        awaitingApproval: n("awaiting_approval"),
        awaitingInput: n("awaiting_input"),
      };
    });
}

export interface RenderOptions {
  /** Bar width in characters; default 20. */
  barWidth?: number;
  /** Cut every line to this many characters (a terminal's columns); default no limit. */
  maxWidth?: number;
  /** Use # and - instead of block characters. */
  ascii?: boolean;
  runningShown?: number;
}

/** `[██████░░░░]` for a fraction 0..1 (clamped). */
export function bar(fraction: number, width = 20, ascii = false): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = Math.round(f * width);
  const [on, off] = ascii ? ["#", "-"] : ["█", "░"];
  return `[${on.repeat(filled)}${off.repeat(width - filled)}]`;
}

/** `850ms`, `4s`, `2m 5s`, `3h 10m`: how long until a delayed task is due. */
export function duration(ms: number): string {
  const value = Math.max(0, Math.round(ms));
  if (value < 1_000) return `${value}ms`;
  const s = Math.round(value / 1_000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
}

function percent(fraction: number): string {
  return `${Math.floor(Math.min(1, Math.max(0, fraction)) * 100)}%`.padStart(4);
}

function cut(line: string, max: number | undefined): string {
  if (max === undefined || line.length <= max) return line;
  return max <= 1 ? line.slice(0, Math.max(0, max)) : `${line.slice(0, max - 1)}…`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** The summary as lines (no trailing newlines). */
export function renderStatus(snapshot: StatusSnapshot, options: RenderOptions = {}): string[] {
  const width = options.barWidth ?? 20;
  const ascii = options.ascii ?? false;
  const lines: string[] = [];
  if (snapshot.personas.length === 0) {
    lines.push("no tasks");
  } else {
    const nameWidth = Math.max(...snapshot.personas.map((p) => p.persona.length));
    const countWidth = Math.max(...snapshot.personas.map((p) => `${p.done}/${p.total}`.length));
    for (const p of snapshot.personas) {
      const fraction = p.total === 0 ? 0 : p.done / p.total;
      const parts = [`${p.completed} completed`];
      if (p.failed > 0) parts.push(`${p.failed} failed`);
      if (p.cancelled > 0) parts.push(`${p.cancelled} cancelled`);
      if (p.running > 0) parts.push(`${p.running} running`);
      if (p.pending > 0) parts.push(p.nextDueAt === null ? `${p.pending} pending` : `${p.pending} pending (delayed: next due in ${duration(p.nextDueAt - snapshot.at)})`);
      if (p.awaitingApproval > 0) parts.push(`${p.awaitingApproval} awaiting approval`);
      if (p.awaitingInput > 0) parts.push(`${p.awaitingInput} awaiting an answer`);
      if (p.waiting > 0) parts.push(`${p.waiting} waiting`);
      if (p.blocked > 0) parts.push(`${p.blocked} blocked`);
      lines.push(`${p.persona.padEnd(nameWidth)}  ${bar(fraction, width, ascii)} ${`${p.done}/${p.total}`.padStart(countWidth)} done  ${parts.join(", ")}`);
    }
  }
  const shown = snapshot.running.slice(0, options.runningShown ?? RUNNING_SHOWN_DEFAULT);
  if (snapshot.running.length > 0) {
    lines.push("");
    lines.push(`running (${snapshot.running.length}):`);
    for (const task of shown) {
      const head = `  #${task.id} ${task.persona} attempt ${task.attempt}`;
      const progress = task.progress === null ? `${bar(0, Math.min(width, 10), ascii)}    -` : `${bar(task.progress, Math.min(width, 10), ascii)} ${percent(task.progress)}`;
      const message =
        task.progressMessage === null || task.progressMessage === "" ? oneLine(task.title) : `${oneLine(task.title)}: ${oneLine(task.progressMessage)}`;
      lines.push(`${head}  ${progress}  ${message}`);
    }
    if (snapshot.running.length > shown.length) lines.push(`  … and ${snapshot.running.length - shown.length} more`);
  }
  return lines.map((line) => cut(line, options.maxWidth));
}

/** The `--json` form: counts (persona → state → number), per-persona totals, and the running tasks. */
export function statusJson(snapshot: StatusSnapshot): {
  at: string;
  counts: Counts;
  personas: PersonaSummary[];
  running: RunningTask[];
} {
  return { at: new Date(snapshot.at).toISOString(), counts: snapshot.counts, personas: snapshot.personas, running: snapshot.running };
}

/** One plain log line's worth of the summary, for logs when stderr is not a terminal. */
export function statusFields(snapshot: StatusSnapshot): Record<string, unknown> {
  const personas: Record<string, string> = {};
  for (const p of snapshot.personas) personas[p.persona] = `${p.done}/${p.total}`;
  return {
    done: personas,
    running: snapshot.running.map((t) => ({ taskId: t.id, persona: t.persona, progress: t.progress, message: t.progressMessage })),
  };
}
