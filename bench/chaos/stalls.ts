/**
 * The stall rule (docs/ARCHITECTURE.md rule 13), computed from the data: no task may wait ready
 * longer than the stall bound while a live, unpaused supervisor serving its
 * persona had a free slot for it.
 *
 * - When a task was ready comes from its task_events (enqueue, retrying/released
 *   with their run_at, retried, unblocked; its dependencies' completions), each
 *   event placed in true time by the runner's samples of the largest event id
 *   (history.eventClock), so a skewed writer's `at` does not matter; a run_at is
 *   taken as the writer's delay (run_at - at) after the event's true time.
 *   Bounds are taken on the task's side: ready from the latest time the event
 *   could have committed, claimed at the earliest.
 * - Which supervisor had a free slot: the runner's record of every supervisor
 *   (ready, paused, ended), and its open claims from task_events (a claim by its
 *   agent id holds a slot of the task's persona until the attempt's outcome; a
 *   lease collected under it until RESUME_ALLOWANCE_MS later, the time it takes
 *   to notice and abort). Free = fewer open claims of the persona, by every
 *   claimant, than the persona's concurrency (the store holds it across every
 *   claimant: docs/ARCHITECTURE.md rule 15, so a dead holder's uncollected leases
 *   and other supervisors' claims take its room) and fewer of the supervisor's own
 *   in all than its concurrency.
 * - Windows where no claim can commit (the harness holds the write lock, or the
 *   disk is full) are nobody's stall; the bound restarts FAULT_RECOVERY_ALLOWANCE_MS
 *   after such a window ends. A SIGSTOPped supervisor serves nothing until
 *   RESUME_ALLOWANCE_MS after its SIGCONT.
 *
 * A stall: a stretch longer than 2 × pollIntervalMs + CLAIM_ALLOWANCE_MS during
 * which the task was ready and ONE supervisor had a free slot for its persona
 * the whole time (each supervisor's stretch is measured on its own, so a fresh
 * supervisor gets a fresh bound).
 */
import type { TaskEvent, TaskRecord, Json } from "../../src/store/index.js";
import { eventTime, faultsAround, type ChaosHistory, type SupervisorRecord } from "./history.js";

/**
 * Time a supervisor with a free slot may take to claim a ready task on top of two
 * poll intervals, in ms. On this 2-core machine the run has 2–4 supervisor
 * processes, each with 2 worker threads, beside the runner and the shell tasks'
 * processes: a claim can queue behind other processes' write transactions (a reap
 * of many leases, a batch of completions; each waits its turn under busy_timeout),
 * and a loaded process's event loop lags (a few hundred ms at worst in the chaos
 * logs). 1 s is 20 chaos poll intervals, so a supervisor that claims at all
 * claims well within it, and one that waits for a missed wake-up does not.
 */
export const CLAIM_ALLOWANCE_MS = 1_000;
/**
 * After the write lock is released or the ballast is deleted, the bound restarts
 * this much later, in ms: the heartbeats, completions and reaps queued behind the
 * fault commit first, and a supervisor whose claim failed retries after its backoff.
 */
export const FAULT_RECOVERY_ALLOWANCE_MS = 2_000;
/**
 * After SIGCONT (or a lease collected under a live holder), the supervisor needs
 * this long to see its leases lost and abort those attempts (a heartbeat period
 * plus the 300 ms abort grace, with margin), in ms.
 */
export const RESUME_ALLOWANCE_MS = 1_000;

export interface Stall {
  taskId: number;
  persona: string;
  /** The ready stretch, true time: from when it was ready to its claim (or the run's end). */
  readyFrom: number;
  readyTo: number;
  claimed: boolean;
  /** The longest stretch of it one supervisor had a free slot, and which. */
  waitedMs: number;
  boundMs: number;
  supervisor: string;
  faults: string[];
}

interface Interval {
  from: number;
  to: number;
}

function obj(value: Json | null): Record<string, Json> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

function num(value: Json | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** The stretches during which a task was ready (pending, dependencies completed, run_at passed), true time. */
export function readyIntervals(task: TaskRecord, events: readonly TaskEvent[], history: ChaosHistory, depsDoneAt: number): Array<Interval & { runAtRaw: number }> {
  const out: Array<Interval & { runAtRaw: number }> = [];
  let pendingFrom: number | null = null;
  let due = 0;
  // The run_at value as stored (the writer's clock): a claimer compares it with its own clock.
  let runAtRaw = 0;
  const close = (to: number) => {
    if (pendingFrom === null) return;
    const from = Math.max(pendingFrom, due, depsDoneAt);
    if (from < to) out.push({ from, to, runAtRaw });
    pendingFrom = null;
  };
  for (const e of events) {
    const t = eventTime(history.eventClock, e.id);
    const data = obj(e.data);
    const delay = (runAt: number | null) => Math.max(0, runAt === null ? 0 : runAt - e.at);
    switch (e.type) {
      case "task:enqueued":
        if (data.status === "pending" || data.status === "waiting") {
          pendingFrom = t.latest;
          due = history.dueAt[task.id] ?? 0;
          runAtRaw = Math.max(due, e.at);
        }
        break;
      case "task:claimed":
      case "task:cancelled":
        close(t.earliest);
        break;
      case "task:retrying":
      case "task:released":
        pendingFrom = t.latest;
        due = t.latest + delay(num(data.runAt));
        runAtRaw = num(data.runAt) ?? e.at;
        break;
      case "task:retried":
        if (data.status === "pending" || data.status === "waiting") {
          pendingFrom = t.latest;
          due = 0;
          runAtRaw = e.at;
        } else pendingFrom = null;
        break;
      case "task:unblocked":
        pendingFrom = t.latest;
        due = 0;
        break;
      case "task:blocked":
      case "task:failed":
      case "task:completed":
        pendingFrom = null;
        break;
      default:
        break;
    }
  }
  if (task.status === "pending" || task.status === "waiting") close(history.endAt);
  return out;
}

/** Removes `cut` from every interval of `base`. Both sorted, `cut` may overlap itself. */
function subtract(base: Interval[], cut: Interval[]): Interval[] {
  const cuts = [...cut].sort((a, b) => a.from - b.from);
  const out: Interval[] = [];
  for (const b of base) {
    let from = b.from;
    for (const c of cuts) {
      if (c.to <= from || c.from >= b.to) continue;
      if (c.from > from) out.push({ from, to: c.from });
      from = Math.max(from, c.to);
      if (from >= b.to) break;
    }
    if (from < b.to) out.push({ from, to: b.to });
  }
  return out;
}

/** Per supervisor agent id: its claims as [from, to, persona] slot occupations, true time. */
function occupations(tasks: readonly TaskRecord[], events: Map<number, TaskEvent[]>, history: ChaosHistory): Map<string, Array<Interval & { persona: string }>> {
  const out = new Map<string, Array<Interval & { persona: string }>>();
  for (const task of tasks) {
    let open: { agentId: string; from: number } | null = null;
    const push = (to: number) => {
      if (open === null) return;
      let list = out.get(open.agentId);
      if (list === undefined) out.set(open.agentId, (list = []));
      list.push({ from: open.from, to, persona: task.persona });
      open = null;
    };
    for (const e of events.get(task.id) ?? []) {
      const t = eventTime(history.eventClock, e.id);
      switch (e.type) {
        case "task:claimed":
          push(t.latest);
          if (e.agentId !== null) open = { agentId: e.agentId, from: t.earliest };
          break;
        case "task:completed":
        case "task:retrying":
        case "task:failed":
        case "task:released":
          push(t.latest);
          break;
        case "lease:expired":
        case "task:cancelled":
          // The holder runs on until it notices (heartbeat) and its abort ends.
          push(t.latest + RESUME_ALLOWANCE_MS);
          break;
        default:
          break;
      }
    }
    push(Number.POSITIVE_INFINITY);
  }
  return out;
}

/**
 * When `s` had a free slot for `persona`: alive, ready, not paused, not in a no-commit fault,
 * under both limits: `held`, its own claims, against its concurrency; `ofPersonaHeld`, every
 * claimant's claims of the persona, against the persona's.
 */
function freeWindows(
  s: SupervisorRecord,
  persona: string,
  personaConcurrency: number,
  held: ReadonlyArray<Interval & { persona: string }>,
  ofPersonaHeld: readonly Interval[],
  history: ChaosHistory,
): Interval[] {
  if (s.readyAt === null) return [];
  const end = s.endAt ?? history.endAt;
  if (end <= s.readyAt) return [];
  // Sweep the occupation changes within [readyAt, end].
  const changes: Array<{ at: number; persona: number; total: number }> = [];
  for (const h of held) changes.push({ at: h.from, persona: 0, total: 1 }, { at: h.to, persona: 0, total: -1 });
  for (const h of ofPersonaHeld) changes.push({ at: h.from, persona: 1, total: 0 }, { at: h.to, persona: -1, total: 0 });
  changes.sort((a, b) => a.at - b.at || a.total + a.persona - (b.total + b.persona));
  const free: Interval[] = [];
  let ofPersona = 0;
  let total = 0;
  let freeFrom: number | null = s.readyAt;
  const isFree = () => ofPersona < personaConcurrency && total < s.concurrency;
  for (const c of changes) {
    const wasFree = isFree();
    ofPersona += c.persona;
    total += c.total;
    const at = Math.min(Math.max(c.at, s.readyAt), end);
    if (wasFree && !isFree()) {
      if (freeFrom !== null && at > freeFrom) free.push({ from: freeFrom, to: at });
      freeFrom = null;
    } else if (!wasFree && isFree()) {
      freeFrom = at;
    }
  }
  if (freeFrom !== null && isFree() && end > freeFrom) free.push({ from: freeFrom, to: end });
  const cuts: Interval[] = [
    ...s.pauses.map((p) => ({ from: p.from, to: p.to + RESUME_ALLOWANCE_MS })),
    ...history.faults.filter((f) => f.kind === "lock" || f.kind === "disk").map((f) => ({ from: f.from, to: f.to + FAULT_RECOVERY_ALLOWANCE_MS })),
  ];
  return subtract(free, cuts);
}

/** The stall bound of a supervisor, in ms. */
export function stallBoundMs(s: Pick<SupervisorRecord, "pollIntervalMs">): number {
  return 2 * s.pollIntervalMs + CLAIM_ALLOWANCE_MS;
}

/** Every stall of the run. `personaConcurrency`: each persona's concurrency (across every claimant). */
export function findStalls(params: { tasks: readonly TaskRecord[]; events: Map<number, TaskEvent[]>; history: ChaosHistory; personaConcurrency: (persona: string) => number }): Stall[] {
  const { tasks, events, history } = params;
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const completedAt = new Map<number, number>();
  for (const task of tasks) {
    const done = (events.get(task.id) ?? []).filter((e) => e.type === "task:completed").pop();
    if (done !== undefined) completedAt.set(task.id, eventTime(history.eventClock, done.id).latest);
  }
  const held = occupations(tasks, events, history);
  const windows = new Map<string, Array<{ s: SupervisorRecord; free: Interval[] }>>();
  const windowsFor = (persona: string) => {
    let list = windows.get(persona);
    if (list === undefined) {
      // Every claimant's claims of the persona: supervisors, dead or alive, and anyone else.
      const ofPersona = [...held.values()].flat().filter((h) => h.persona === persona);
      list = history.supervisors
        .filter((s) => s.agentId !== null)
        .map((s) => ({ s, free: freeWindows(s, persona, params.personaConcurrency(persona), held.get(s.agentId!) ?? [], ofPersona, history) }));
      windows.set(persona, list);
    }
    return list;
  };
  const stalls: Stall[] = [];
  for (const task of tasks) {
    const depsDoneAt = Math.max(0, ...task.dependsOn.map((d) => (byId.has(d) ? (completedAt.get(d) ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY)));
    const ready = readyIntervals(task, events.get(task.id) ?? [], history, depsDoneAt);
    for (const r of ready) {
      let worst: { waited: number; s: SupervisorRecord } | null = null;
      for (const { s, free } of windowsFor(task.persona)) {
        // run_at is a wall-clock time judged by each claimer's own clock (docs/ARCHITECTURE.md,
        // liveness): a supervisor whose clock is behind sees the task due that much later.
        // The supervisor's own clock: its measured offset (on PostgreSQL, ~0 whatever its wall clock), else the one asked.
        const readyForS = Math.max(r.from, r.runAtRaw - (s.measuredOffsetMs ?? s.clockOffsetMs));
        for (const w of free) {
          const waited = Math.min(w.to, r.to) - Math.max(w.from, readyForS);
          if (waited > stallBoundMs(s) && (worst === null || waited - stallBoundMs(s) > worst.waited - stallBoundMs(worst.s))) worst = { waited, s };
        }
      }
      if (worst !== null) {
        stalls.push({
          taskId: task.id,
          persona: task.persona,
          readyFrom: r.from,
          readyTo: r.to,
          claimed: r.to < history.endAt,
          waitedMs: Math.round(worst.waited),
          boundMs: stallBoundMs(worst.s),
          supervisor: `${worst.s.label}${worst.s.agentId === null ? "" : ` (${worst.s.agentId})`}${worst.s.clockOffsetMs !== 0 ? `, clock offset ${worst.s.clockOffsetMs} ms` : ""}`,
          faults: faultsAround(history, r.from, r.to),
        });
      }
    }
  }
  return stalls;
}

/** One stall as a report line. */
export function describeStall(s: Stall, startedAt: number): string {
  const at = (t: number) => `${((t - startedAt) / 1000).toFixed(2)} s`;
  return `task ${s.taskId} (${s.persona}) waited ready ${s.waitedMs} ms (bound ${s.boundMs} ms) while ${s.supervisor} had a free slot; ready ${at(s.readyFrom)} → ${s.claimed ? `claimed ${at(s.readyTo)}` : "never claimed"}${s.faults.length > 0 ? `; faults around: ${s.faults.join(", ")}` : ""}`;
}
