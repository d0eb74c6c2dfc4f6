/**
 * The chaos run's verdict, computed from what the database holds: every task, and
 * its whole `task_events` trail. Pure: it takes records and returns violations,
 * so its rules are unit-tested on hand-made histories too.
 *
 * Per task, the events are read as a small state machine: a `task:claimed` opens
 * an attempt; it is closed by exactly one outcome — `task:completed`,
 * `task:retrying`, `task:failed`, `task:released`, or `lease:expired` followed at
 * once by the reaper's `task:retrying` / `task:failed` — before the next claim.
 * Each closed attempt is then compared with what the adapter and the retry policy
 * say it must have been (the adapters are deterministic in task.attempt), and the
 * final status with the last outcome.
 */
import { plan } from "../../src/adapters/planner.js";
import type { Json, TaskEvent, TaskRecord } from "../../src/store/index.js";
import { lostLeasesAllowed } from "../../src/store/lost-leases.js";
import { eventTime, faultsAround, supervisorOf, type ChaosHistory } from "./history.js";
import { CANNOT_FAIL_KINDS, CHAOS_PERSONA_CONCURRENCY, isChaosKind, type ChaosKind } from "./plan.js";
import { describeStall, findStalls, type Stall } from "./stalls.js";

export type Outcome = "completed" | "retrying" | "failed" | "released" | "expired-retrying" | "expired-failed" | "cancelled";

export interface AttemptRecord {
  attempt: number;
  /** Attempts start again at 1 after `roster retry`: round 0 before the first retry, 1 after it … */
  round: number;
  claimEventId: number;
  /** The event that closed it (outcome, release, the reaper's retrying/failed, a cancel). */
  closeEventId: number | null;
  /** The agent that claimed it. */
  agentId: string | null;
  outcome: Outcome | null;
  errorCode: string | null;
  retryable: boolean | null;
  /**
   * A reaped attempt recorded as not counted (the reaper's retrying/failed says `counted: false`:
   * src/store/lost-leases.ts), and the leases its task had lost in this round counting it, less
   * those given back (lease:given-back). Older trails count reaped attempts (rule 6 before).
   */
  uncounted?: boolean;
  leasesLost?: number;
}

export interface TaskVerdict {
  taskId: number;
  kind: string;
  attempts: AttemptRecord[];
  completions: number;
  /** A claim with no outcome at the end. */
  openClaim: boolean;
  problems: string[];
}

export interface ChaosFigures {
  tasks: number;
  byStatus: Record<string, number>;
  claims: number;
  leaseExpiries: number;
  releases: number;
  /** Tasks with more than one `task:completed`, plus planners whose children were written more than once. */
  duplicates: number;
  /** Tasks not terminal as their policy says: unfinished, left claimed, or blocked without a failed dependency. */
  lost: number;
  /** Runs of the shell script (bench/chaos/work.mjs) that wrote their line: at least one per completed shell task. */
  shellExecutions: number;
  /**
   * Shell attempts that lost their lease (their supervisor was killed) whose script
   * still ran to the end: orphans. Reported, not a failure: a run may also end just
   * before the kill, its outcome not yet committed.
   */
  orphanShellRuns: number;
  /**
   * Tasks whose adapter cannot fail on its own (echo, sleep, the shell scripts,
   * the planner) that ended `failed`, other than by losing every attempt to the
   * harness's kills; and failing tasks that failed with another code than their own.
   */
  wronglyFailed: string[];
  /** Tasks left ready past the stall bound beside a supervisor with a free slot (stalls.ts). */
  stalls: Stall[];
  /** Grandchildren of a killed shell leader (or of a killed supervisor's tree) that lived on. */
  orphanGrandchildren: number;
  /** Attempts charged to a task although what ended them was the harness (leader or supervisor killed, supervisor stopped). */
  harnessLostAttempts: number;
  /** Leases collected while, by the true clock, they had not expired. */
  earlyReaps: number;
  violations: string[];
}

export interface ChaosSnapshot {
  tasks: TaskRecord[];
  events: Map<number, TaskEvent[]>;
  integrity: string;
  /** Lines "<task id> <attempt>" the shell script appended. */
  shellLog: string[];
  /** Mismatches between derived state (task_counts, unmet_deps) and a recount. */
  derived?: string[];
  /** What the runner did and saw (supervisors, faults, the event clock); without it, the rules that need it are skipped. */
  history?: ChaosHistory;
}

function obj(value: Json | null): Record<string, Json> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

function int(value: Json | undefined, fallback: number): number {
  return typeof value === "number" && Number.isInteger(value) ? value : fallback;
}

/** The event trail as attempts; protocol problems (overlapping claims, an outcome without a claim …) are reported. */
export function readAttempts(events: readonly TaskEvent[]): { attempts: AttemptRecord[]; completions: number; openClaim: boolean; problems: string[] } {
  const attempts: AttemptRecord[] = [];
  const problems: string[] = [];
  let held: AttemptRecord | null = null;
  let expiring: AttemptRecord | null = null;
  let consumed = 0;
  let completions = 0;
  let round = 0;
  let leasesLost = 0;
  const close = (e: TaskEvent, outcome: Outcome, attempt: AttemptRecord | null): void => {
    if (attempt === null) {
      problems.push(`event ${e.id} ${e.type} (attempt ${e.attempt}) has no claim open before it`);
      return;
    }
    if (e.attempt !== attempt.attempt) problems.push(`event ${e.id} ${e.type} is for attempt ${e.attempt}, the open claim is attempt ${attempt.attempt}`);
    if (e.agentId !== attempt.agentId) problems.push(`event ${e.id} ${e.type} is by agent ${e.agentId}, attempt ${attempt.attempt} was claimed by ${attempt.agentId}`);
    attempt.outcome = outcome;
    attempt.closeEventId = e.id;
    consumed = outcome === "released" ? attempt.attempt - 1 : attempt.attempt;
  };
  for (const e of events) {
    if (expiring !== null && e.type !== "task:retrying" && e.type !== "task:failed") {
      problems.push(`lease:expired of attempt ${expiring.attempt} is followed by ${e.type} (event ${e.id}), not by its retrying/failed`);
      expiring = null;
    }
    switch (e.type) {
      case "task:claimed": {
        if (held !== null) problems.push(`event ${e.id}: claimed (attempt ${e.attempt}) while attempt ${held.attempt} (claim event ${held.claimEventId}) had no outcome`);
        if (e.attempt !== consumed + 1) problems.push(`event ${e.id}: claim is attempt ${e.attempt}, expected ${consumed + 1}`);
        held = { attempt: e.attempt ?? -1, round, claimEventId: e.id, closeEventId: null, agentId: e.agentId, outcome: null, errorCode: null, retryable: null };
        attempts.push(held);
        break;
      }
      case "task:started":
      case "task:progress":
        if (held === null || e.attempt !== held.attempt) problems.push(`event ${e.id} ${e.type} (attempt ${e.attempt}) outside its claim`);
        break;
      case "task:completed":
        completions++;
        close(e, "completed", held);
        held = null;
        break;
      case "task:released":
        close(e, "released", held);
        held = null;
        break;
      case "lease:expired":
        if (held === null) problems.push(`event ${e.id} lease:expired (attempt ${e.attempt}) has no claim open before it`);
        else if (e.attempt !== held.attempt) problems.push(`event ${e.id} lease:expired is for attempt ${e.attempt}, the open claim is attempt ${held.attempt}`);
        else if (typeof obj(e.data).leaseExpiresAt === "number" && e.at < int(obj(e.data).leaseExpiresAt, Number.MAX_SAFE_INTEGER)) problems.push(`event ${e.id} lease:expired at ${e.at}, before the lease's expiry ${JSON.stringify(obj(e.data).leaseExpiresAt)}`);
        // Judged by silence (the reaper's monotonic time): it must have heard nothing for a whole lease.
        else if (typeof obj(e.data).silentMs === "number" && int(obj(e.data).silentMs, 0) < int(obj(e.data).leaseMs, 0)) problems.push(`event ${e.id} lease:expired after ${JSON.stringify(obj(e.data).silentMs)} ms of silence, less than the lease's ${JSON.stringify(obj(e.data).leaseMs)} ms`);
        expiring = held;
        if (held !== null) held.leasesLost = ++leasesLost;
        if (held !== null && typeof obj(e.data).leasesLost === "number" && obj(e.data).leasesLost !== leasesLost) {
          problems.push(`event ${e.id} lease:expired says ${JSON.stringify(obj(e.data).leasesLost)} leases lost, the trail shows ${leasesLost}`);
        }
        held = null;
        break;
      case "lease:given-back":
        leasesLost = Math.max(0, leasesLost - 1);
        break;
      case "task:retrying":
      case "task:failed": {
        const data = obj(e.data);
        const error = obj(data.error ?? null);
        const target = expiring ?? held;
        const expired = expiring !== null;
        close(e, expired ? (e.type === "task:retrying" ? "expired-retrying" : "expired-failed") : e.type === "task:retrying" ? "retrying" : "failed", target);
        if (target !== null) {
          target.errorCode = typeof error.code === "string" ? error.code : null;
          target.retryable = e.type === "task:retrying" ? true : typeof data.retryable === "boolean" ? data.retryable : null;
          // A reaped attempt not counted: the next claim is the same attempt number again.
          if (expired && data.counted === false) {
            target.uncounted = true;
            consumed = target.attempt - 1;
          }
        }
        expiring = null;
        held = null;
        break;
      }
      case "task:blocked":
        if (held !== null) problems.push(`event ${e.id}: blocked while attempt ${held.attempt} is claimed`);
        break;
      case "task:cancelled":
        // `roster cancel` of a running task ends its attempt (by the CLI, not the claimer: no agent check).
        if (held !== null) {
          held.outcome = "cancelled";
          held.closeEventId = e.id;
          consumed = held.attempt;
        }
        held = null;
        break;
      case "task:retried":
        // `roster retry`: attempts start again at 1.
        if (held !== null) problems.push(`event ${e.id}: retried while attempt ${held.attempt} is claimed`);
        held = null;
        round++;
        consumed = 0;
        leasesLost = 0;
        break;
      default:
        // task:enqueued, task:unblocked, dependency:added: no lease involved.
        break;
    }
  }
  if (expiring !== null) problems.push(`lease:expired of attempt ${expiring.attempt} has no retrying/failed after it`);
  if (completions > 1) problems.push(`${completions} task:completed events`);
  return { attempts, completions, openClaim: held !== null, problems };
}

/** What the adapter of `kind` does on attempt `attempt`: succeed, or fail (retryable or not) with its own error code. */
export function adapterOutcome(kind: ChaosKind, payload: Json | null, attempt: number): { ok: true } | { ok: false; retryable: boolean; code: string } {
  const p = obj(payload);
  switch (kind) {
    case "echo":
    case "sleep":
    case "shell":
    case "tree":
    case "planner":
      return { ok: true };
    case "flaky":
      return attempt > int(p.failTimes, 1) ? { ok: true } : { ok: false, retryable: true, code: "ADAPTER_FAILED" };
    case "fail":
      return { ok: false, retryable: p.retryable !== false, code: "ADAPTER_FAILED" };
    case "hang":
      // Never returns and ignores its abort: the attempt's timeout ends it (the thread terminated).
      return { ok: false, retryable: true, code: "TIMEOUT" };
  }
}

/** Why the harness, not the task, ended an attempt: its shell leader or its supervisor killed, or its supervisor stopped. */
export function harnessCause(task: TaskRecord, a: AttemptRecord, history: ChaosHistory | undefined): string | null {
  if (history === undefined) return a.outcome === "expired-retrying" || a.outcome === "expired-failed" ? "lease expired (no history)" : null;
  if (history.leaderKills.some((k) => k.taskId === task.id && k.attempt === a.attempt && (k.at >= eventTime(history.eventClock, a.claimEventId).earliest))) return "its shell leader was killed";
  if (a.outcome !== "expired-retrying" && a.outcome !== "expired-failed") return null;
  const holder = supervisorOf(history, a.agentId);
  // A supervisor the runner never saw ready (killed during start-up) or one it killed, stopped or paused while it held the attempt.
  if (holder === undefined) return "its supervisor was killed before it was ready";
  const claimed = eventTime(history.eventClock, a.claimEventId).earliest;
  const closed = a.closeEventId === null ? Number.POSITIVE_INFINITY : eventTime(history.eventClock, a.closeEventId).latest;
  if (holder.endAt !== null && holder.endAt <= closed) return `${holder.label} was killed`;
  if (holder.pauses.some((p) => p.from <= closed && p.to >= claimed)) return `${holder.label} was SIGSTOPped`;
  return null;
}

/** The outcome the policy requires for an attempt, given what happened to it (adapter result, lease expiry, cancel, a killed leader). */
function expectedOutcome(kind: ChaosKind, task: TaskRecord, a: AttemptRecord, history: ChaosHistory | undefined): Outcome {
  const last = a.attempt >= task.maxAttempts;
  if (a.outcome === "expired-retrying" || a.outcome === "expired-failed") {
    // Not counted: the task fails only once it has lost as many leases as it may (src/store/lost-leases.ts).
    if (a.uncounted === true) return (a.leasesLost ?? 0) >= lostLeasesAllowed(task.maxAttempts) ? "expired-failed" : "expired-retrying";
    return last ? "expired-failed" : "expired-retrying";
  }
  if (a.outcome === "released") return "released";
  if (a.outcome === "cancelled") return "cancelled";
  if ((a.outcome === "retrying" || a.outcome === "failed") && harnessCause(task, a, history) !== null) return last ? "failed" : "retrying";
  const adapter = adapterOutcome(kind, task.payload, a.attempt);
  if (adapter.ok) return "completed";
  return adapter.retryable && !last ? "retrying" : "failed";
}

const TERMINAL = new Set(["completed", "failed"]);
const BAD_DEPENDENCY = new Set(["failed", "cancelled", "blocked"]);
/** After a leader's kill, how long its grandchildren may take to die with it (a process-group kill is one signal: the adapter sends it when its child exits, or the watchdog within 100 ms when the adapter's thread is held), in ms. */
export const GRANDCHILD_KILL_SLACK_MS = 1_000;

/** Checks one task against its events, its dependencies, its children and its kind's policy. */
export function checkTask(
  task: TaskRecord,
  events: readonly TaskEvent[],
  context: { byId: Map<number, TaskRecord>; events: Map<number, TaskEvent[]>; children: TaskRecord[]; shellRuns: Set<string>; history?: ChaosHistory | undefined },
): TaskVerdict & { wronglyFailed: string | null; harnessLost: number; earlyReaps: number } {
  const read = readAttempts(events);
  const problems = [...read.problems];
  const kind = task.persona;
  const history = context.history;
  const verdict = { taskId: task.id, kind, attempts: read.attempts, completions: read.completions, openClaim: read.openClaim, problems, wronglyFailed: null as string | null, harnessLost: 0, earlyReaps: 0 };
  if (!isChaosKind(kind)) {
    problems.push(`unknown persona ${kind}`);
    return verdict;
  }
  const round = read.attempts.length === 0 ? 0 : read.attempts[read.attempts.length - 1]!.round;
  const current = read.attempts.filter((a) => a.round === round);
  if (task.attempts > task.maxAttempts) problems.push(`attempts ${task.attempts} > maxAttempts ${task.maxAttempts}`);
  const consumed = current.filter((a) => a.outcome !== null && a.outcome !== "released" && a.uncounted !== true).length;
  const retriedSince = events.some((e) => e.type === "task:retried" && (current.length === 0 || e.id > current[current.length - 1]!.claimEventId));
  if (!read.openClaim && !retriedSince && task.attempts !== consumed) problems.push(`attempts column is ${task.attempts}, the events show ${consumed} attempts used`);

  // Each closed attempt against the adapter and the policy.
  for (const a of read.attempts) {
    if (a.outcome === null) continue;
    const expected = expectedOutcome(kind, task, a, history);
    const cause = harnessCause(task, a, history);
    if (cause !== null && a.outcome !== "released" && a.outcome !== "cancelled") verdict.harnessLost++;
    if (a.outcome !== expected) problems.push(`attempt ${a.attempt}: ${a.outcome}${a.errorCode === null ? "" : ` (${a.errorCode})`}, the policy says ${expected}`);
    const own = adapterOutcome(kind, task.payload, a.attempt);
    if ((a.outcome === "retrying" || a.outcome === "failed") && cause === null && !own.ok && a.errorCode !== own.code) problems.push(`attempt ${a.attempt}: failed with ${a.errorCode}, not the adapter's ${own.code}`);
    if ((a.outcome === "expired-retrying" || a.outcome === "expired-failed") && a.errorCode !== "LEASE_EXPIRED") problems.push(`attempt ${a.attempt}: lease expiry recorded as ${a.errorCode}`);
  }

  // Rule 14: a lease is collected only once it expired by the true clock (its holder's clock offset taken out).
  if (history !== undefined) {
    for (const e of events) {
      if (e.type !== "lease:expired") continue;
      const expiresAt = obj(e.data).leaseExpiresAt;
      if (typeof expiresAt !== "number") continue;
      const holder = supervisorOf(history, e.agentId);
      const trueExpiry = expiresAt - (holder?.measuredOffsetMs ?? holder?.clockOffsetMs ?? 0);
      const at = eventTime(history.eventClock, e.id).latest;
      if (at < trueExpiry - 50) {
        verdict.earlyReaps++;
        problems.push(`lease of attempt ${e.attempt} (held by ${holder?.label ?? e.agentId}) collected ${Math.round(trueExpiry - at)} ms before it expired by the true clock`);
      }
    }
  }

  // The final status against the last outcome.
  const settled = current.filter((a) => a.outcome !== null && a.outcome !== "released");
  const last = settled[settled.length - 1];
  const deps = task.dependsOn.map((id) => context.byId.get(id));
  if (deps.some((d) => d === undefined)) problems.push("a dependency is missing");
  const badDep = deps.some((d) => d !== undefined && BAD_DEPENDENCY.has(d.status));
  const cancelKept = history?.cancels.some((c) => c.taskId === task.id && c.cancelled && !c.retried) === true;
  if (task.status === "blocked") {
    if (!badDep) problems.push("blocked, but no dependency failed, was cancelled or is blocked");
    if (current.length > 0 && !retriedSince) problems.push("blocked, but it was claimed");
  } else if (task.status === "cancelled" && cancelKept) {
    // The runner cancelled it and its retry was refused: the runner reports that.
  } else if (!TERMINAL.has(task.status)) {
    problems.push(`not terminal: ${task.status}${read.openClaim ? " (claimed, no outcome)" : ""}`);
  } else {
    if (badDep) problems.push(`${task.status}, yet a dependency is ${deps.find((d) => d !== undefined && BAD_DEPENDENCY.has(d.status))!.status}`);
    const wanted = task.status === "completed" ? ["completed"] : ["failed", "expired-failed"];
    if (last === undefined || last.outcome === null || !wanted.includes(last.outcome)) problems.push(`status ${task.status}, last outcome ${last?.outcome ?? "none"}`);
    if (read.openClaim) problems.push(`status ${task.status} with a claim still open`);
  }

  // Wrongly failed: a task that cannot fail on its own ends completed unless the harness took every attempt it had;
  // a task designed to fail fails only with its own code (or by losing its leases to the harness).
  if (task.status === "failed") {
    const code = last?.errorCode ?? "none";
    const lostToHarness = settled.length >= task.maxAttempts && settled.every((a) => harnessCause(task, a, history) !== null);
    const cannotFail = (CANNOT_FAIL_KINDS as readonly string[]).includes(kind);
    const ownCode = last === undefined ? null : (() => {
      const own = adapterOutcome(kind, task.payload, last.attempt);
      return own.ok ? null : own.code;
    })();
    const why = settled.map((a) => `${a.attempt}:${a.outcome}${a.errorCode === null ? "" : `/${a.errorCode}`}${harnessCause(task, a, history) === null ? "" : ` (${harnessCause(task, a, history)})`}`).join(", ");
    const retried = history?.cancels.some((c) => c.taskId === task.id && c.retried) === true ? ", after a cancel and retry" : "";
    if (cannotFail && !lostToHarness) verdict.wronglyFailed = `wrongly failed: ${code}${retried} (a ${kind} task cannot fail on its own; attempts ${why})`;
    else if (!cannotFail && !lostToHarness && last !== undefined && code !== ownCode && harnessCause(task, last, history) === null) {
      verdict.wronglyFailed = `wrongly failed: ${code}, its own failure is ${ownCode ?? "none"}${retried} (attempts ${why})`;
    }
    if (verdict.wronglyFailed !== null && history !== undefined) {
      const first = read.attempts[0];
      const from = first === undefined ? 0 : eventTime(history.eventClock, first.claimEventId).earliest;
      const closing = last?.closeEventId ?? null;
      const to = closing === null ? history.endAt : eventTime(history.eventClock, closing).latest;
      const around = faultsAround(history, from, to);
      if (around.length > 0) verdict.wronglyFailed += `; faults around: ${around.join(", ")}`;
    }
    if (verdict.wronglyFailed !== null) problems.push(verdict.wronglyFailed);
  }

  // No claim before every dependency completed (docs/ARCHITECTURE.md rule 2).
  for (const dep of deps) {
    if (dep === undefined) continue;
    const done = (context.events.get(dep.id) ?? []).find((e) => e.type === "task:completed");
    for (const a of read.attempts) {
      if (done === undefined || done.id > a.claimEventId) problems.push(`attempt ${a.attempt} claimed (event ${a.claimEventId}) before dependency ${dep.id} completed`);
    }
  }

  // The stored result is the completing attempt's (fencing: a discarded attempt's result never lands).
  if (task.status === "completed") {
    const completing = last?.attempt;
    const result = obj(task.result);
    if (kind === "flaky" || kind === "shell" || kind === "tree") {
      if (result.attempt !== completing) problems.push(`result is from attempt ${JSON.stringify(result.attempt)}, attempt ${completing} completed`);
    }
    if (kind === "shell" && !context.shellRuns.has(`${task.id} ${completing}`)) problems.push(`completed by attempt ${completing}, but the shell script logged no run of it`);
  }

  // Decomposition: a completed planner's children exist once, as the plan says; other tasks have none.
  if (kind === "planner" && task.status === "completed") {
    const expected = plan({ title: task.title, payload: task.payload, persona: task.persona }).tasks!.length;
    if (context.children.length !== expected) problems.push(`${context.children.length} children, the plan has ${expected}`);
    const done = events.find((e) => e.type === "task:completed");
    const listed = obj(done?.data ?? null).children;
    const ids = context.children.map((c) => c.id).sort((x, y) => x - y);
    if (JSON.stringify(listed) !== JSON.stringify(ids)) problems.push(`task:completed lists children ${JSON.stringify(listed)}, the database holds ${JSON.stringify(ids)}`);
  } else if (context.children.length > 0) {
    problems.push(`${task.status} ${kind} task has ${context.children.length} children`);
  }
  return verdict;
}

/**
 * Grandchildren of bench/chaos/tree.mjs that outlived their leader: a leader the
 * runner killed with SIGKILL, or an attempt whose supervisor was killed (its
 * lease expired). Each is a line of the verdict.
 */
export function grandchildProblems(tasks: readonly TaskRecord[], events: Map<number, TaskEvent[]>, history: ChaosHistory): string[] {
  const problems: string[] = [];
  const deaths = new Map<string, { at: number; why: string }>();
  for (const k of history.leaderKills) deaths.set(`${k.taskId} ${k.attempt}`, { at: k.at, why: `its leader (pid ${k.pid}) was killed` });
  for (const task of tasks) {
    if (task.persona !== "tree") continue;
    for (const a of readAttempts(events.get(task.id) ?? []).attempts) {
      if (a.outcome !== "expired-retrying" && a.outcome !== "expired-failed") continue;
      const holder = supervisorOf(history, a.agentId);
      if (holder?.endAt != null && !deaths.has(`${task.id} ${a.attempt}`)) deaths.set(`${task.id} ${a.attempt}`, { at: holder.endAt, why: `${holder.label} was killed` });
    }
  }
  // A reaped lease does not count an attempt (docs/ARCHITECTURE.md rules 6 and 12), so one attempt
  // number may run again after its holder died: a grandchild started after the death is the later run's.
  const startedAt = new Map(history.grandchildren.filter((g) => g.event === "gcstart").map((g) => [g.pid, g.at]));
  for (const line of history.grandchildren) {
    if (line.event !== "gcdone") continue;
    const death = deaths.get(`${line.taskId} ${line.attempt}`);
    if (death !== undefined && (startedAt.get(line.pid) ?? Number.NEGATIVE_INFINITY) > death.at) continue;
    if (death !== undefined && line.at > death.at + GRANDCHILD_KILL_SLACK_MS) {
      problems.push(`task ${line.taskId} attempt ${line.attempt}: grandchild pid ${line.pid} finished ${line.at - death.at} ms after ${death.why}`);
    }
  }
  for (const pid of history.survivingGrandchildren) problems.push(`grandchild pid ${pid} of a killed leader was still alive at the end of the run`);
  return problems;
}

/** The whole verdict: every task's checks, the database's integrity, and the figures. */
export function checkChaos(snapshot: ChaosSnapshot): ChaosFigures {
  const byId = new Map(snapshot.tasks.map((t) => [t.id, t]));
  const children = new Map<number, TaskRecord[]>();
  for (const t of snapshot.tasks) {
    if (t.parentId === null) continue;
    let list = children.get(t.parentId);
    if (list === undefined) children.set(t.parentId, (list = []));
    list.push(t);
  }
  const shellRuns = new Set(snapshot.shellLog.map((line) => line.trim()).filter((line) => line !== ""));
  const figures: ChaosFigures = {
    tasks: snapshot.tasks.length,
    byStatus: {},
    claims: 0,
    leaseExpiries: 0,
    releases: 0,
    duplicates: 0,
    lost: 0,
    shellExecutions: shellRuns.size,
    orphanShellRuns: 0,
    wronglyFailed: [],
    stalls: [],
    orphanGrandchildren: 0,
    harnessLostAttempts: 0,
    earlyReaps: 0,
    violations: [],
  };
  if (snapshot.integrity !== "ok") figures.violations.push(`PRAGMA integrity_check: ${snapshot.integrity}`);
  figures.violations.push(...(snapshot.derived ?? []));
  for (const task of snapshot.tasks) {
    figures.byStatus[task.status] = (figures.byStatus[task.status] ?? 0) + 1;
    const events = snapshot.events.get(task.id) ?? [];
    const verdict = checkTask(task, events, { byId, events: snapshot.events, children: children.get(task.id) ?? [], shellRuns, history: snapshot.history });
    figures.claims += verdict.attempts.length;
    figures.leaseExpiries += verdict.attempts.filter((a) => a.outcome === "expired-retrying" || a.outcome === "expired-failed").length;
    figures.releases += verdict.attempts.filter((a) => a.outcome === "released").length;
    figures.harnessLostAttempts += verdict.harnessLost;
    figures.earlyReaps += verdict.earlyReaps;
    if (task.persona === "shell") {
      figures.orphanShellRuns += verdict.attempts.filter((a) => a.outcome?.startsWith("expired") === true && shellRuns.has(`${task.id} ${a.attempt}`)).length;
    }
    const planned = task.persona === "planner" && task.status === "completed" ? plan({ title: task.title, payload: task.payload, persona: task.persona }).tasks!.length : 0;
    if (verdict.completions > 1 || (children.get(task.id)?.length ?? 0) > planned) figures.duplicates++;
    const cancelKept = snapshot.history?.cancels.some((c) => c.taskId === task.id && c.cancelled && !c.retried) === true;
    const terminal = TERMINAL.has(task.status) || (task.status === "blocked" && !verdict.problems.some((p) => p.startsWith("blocked"))) || (task.status === "cancelled" && cancelKept);
    if (!terminal || verdict.openClaim) figures.lost++;
    const label = `task ${task.id} (${verdict.kind} "${task.title}")`;
    if (verdict.wronglyFailed !== null) figures.wronglyFailed.push(`${label}: ${verdict.wronglyFailed}`);
    for (const problem of verdict.problems) figures.violations.push(`${label}: ${problem}`);
  }
  if (snapshot.history !== undefined) {
    const gc = grandchildProblems(snapshot.tasks, snapshot.events, snapshot.history);
    figures.orphanGrandchildren = gc.length;
    figures.violations.push(...gc);
    figures.stalls = findStalls({ tasks: snapshot.tasks, events: snapshot.events, history: snapshot.history, personaConcurrency: () => CHAOS_PERSONA_CONCURRENCY });
    const startedAt = snapshot.history.eventClock[0]?.[0] ?? 0;
    for (const stall of figures.stalls) figures.violations.push(`stall: ${describeStall(stall, startedAt)}`);
  }
  return figures;
}
