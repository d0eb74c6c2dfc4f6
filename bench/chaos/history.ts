/**
 * What the chaos runner itself saw and did, recorded as it happened, in its own
 * (true) clock: every supervisor it started (agent id, when it was ready, when
 * it was paused, skewed or ended), every fault it injected, and samples that
 * map task_events ids to true time. The checks (checks.ts, stalls.ts) read it
 * beside the database: the database's own times are each writer's clock, and a
 * skewed supervisor writes skewed ones.
 */
export type FaultKind = "stop" | "cancel" | "hang" | "lock" | "disk" | "leader" | "skew";
export const FAULT_KINDS: readonly FaultKind[] = ["stop", "cancel", "hang", "lock", "disk", "leader", "skew"];

export interface SupervisorRecord {
  /** "cycle 12 supervisor.mjs", "cycle 12 companion", "final roster start" … */
  label: string;
  cycle: number;
  pid: number;
  /** From its ready line (supervisor.mjs) or its "supervisor started" log line (roster start); null if it never got there. */
  agentId: string | null;
  spawnAt: number;
  readyAt: number | null;
  /** When the runner sent SIGTERM or SIGKILL, or saw it exit: it serves no task after this. */
  endAt: number | null;
  /** Its config: the stall bound is 2 × pollIntervalMs + the allowance. */
  pollIntervalMs: number;
  concurrency: number;
  /** SIGSTOP … SIGCONT windows, true time. */
  pauses: Array<{ from: number; to: number }>;
  /** The clock offset asked for (ROSTER_CLOCK_OFFSET_MS) and the one measured in the process after start (null: not measured). */
  clockOffsetMs: number;
  measuredOffsetMs: number | null;
}

export interface FaultRecord {
  kind: FaultKind;
  cycle: number;
  /** True time the fault began and ended (for lock and disk: while no write could commit). */
  from: number;
  to: number;
  /** What it did, for the report ("held BEGIN IMMEDIATE 4200 ms", "SIGSTOP pid 123 for 1400 ms" …). */
  detail: string;
  /** Tasks it concerns (the hung task and its innocents, the delayed tasks, the cancelled ones, the killed leaders' tasks). */
  taskIds: number[];
}

export interface CancelRecord {
  taskId: number;
  cycle: number;
  cancelAt: number;
  /** False when `roster cancel` refused (the task finished in the meantime). */
  cancelled: boolean;
  retryAt: number | null;
  retried: boolean;
  /** The CLI's error line when one refused. */
  error: string | null;
}

export interface LeaderKillRecord {
  taskId: number;
  attempt: number;
  pid: number;
  at: number;
  cycle: number;
}

/** Grandchild lines of bench/chaos/tree.mjs: started, and finished its sleep (t = true time). */
export interface GrandchildLine {
  event: "gcstart" | "gcdone";
  taskId: number;
  attempt: number;
  pid: number;
  at: number;
}

export interface ChaosHistory {
  supervisors: SupervisorRecord[];
  faults: FaultRecord[];
  cancels: CancelRecord[];
  leaderKills: LeaderKillRecord[];
  grandchildren: GrandchildLine[];
  /** Grandchild pids of killed leaders still alive when the run ended. */
  survivingGrandchildren: number[];
  /** True time at which each delayed task (delayMs at enqueue) became due. */
  dueAt: Record<number, number>;
  /** [true time, largest task_events id then], in time order: maps an event to when it committed. */
  eventClock: Array<[number, number]>;
  /** When the run's last supervisor finished (tasks still ready then waited until now). */
  endAt: number;
  /** Supervisors' log lines "ready task waited past the stall bound" (the supervisor's own gauge), for the report. */
  stallWarnings: number;
  /** Leases: the personas' leaseMs. */
  leaseMs: number;
}

export function emptyHistory(leaseMs: number): ChaosHistory {
  return { supervisors: [], faults: [], cancels: [], leaderKills: [], grandchildren: [], survivingGrandchildren: [], dueAt: {}, eventClock: [], endAt: 0, stallWarnings: 0, leaseMs };
}

/**
 * When event `id` committed, in true time: between the last sample that did not
 * see it (`earliest`) and the first that did (`latest`). Outside the samples the
 * bounds are open (0 / Infinity).
 */
export function eventTime(clock: ReadonlyArray<readonly [number, number]>, id: number): { earliest: number; latest: number } {
  // First sample whose max id >= id.
  let lo = 0;
  let hi = clock.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (clock[mid]![1] >= id) hi = mid;
    else lo = mid + 1;
  }
  const latest = lo < clock.length ? clock[lo]![0] : Number.POSITIVE_INFINITY;
  const earliest = lo > 0 ? clock[lo - 1]![0] : 0;
  return { earliest, latest };
}

/** The supervisor record of an agent id, if the runner saw that agent start. */
export function supervisorOf(history: ChaosHistory, agentId: string | null): SupervisorRecord | undefined {
  if (agentId === null) return undefined;
  return history.supervisors.find((s) => s.agentId === agentId);
}

/** Faults of the run active at any time in [from, to], as "lock (cycle 12)". */
export function faultsAround(history: ChaosHistory, from: number, to: number, slackMs = 2_000): string[] {
  return history.faults.filter((f) => f.from <= to + slackMs && f.to >= from - slackMs).map((f) => `${f.kind} (cycle ${f.cycle})`);
}
