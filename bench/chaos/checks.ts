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
import { isChaosKind, type ChaosKind } from "./plan.js";

export type Outcome = "completed" | "retrying" | "failed" | "released" | "expired-retrying" | "expired-failed";

export interface AttemptRecord {
  attempt: number;
  claimEventId: number;
  /** The agent that claimed it. */
  agentId: string | null;
  outcome: Outcome | null;
  errorCode: string | null;
  retryable: boolean | null;
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
  const close = (e: TaskEvent, outcome: Outcome, attempt: AttemptRecord | null): void => {
    if (attempt === null) {
      problems.push(`event ${e.id} ${e.type} (attempt ${e.attempt}) has no claim open before it`);
      return;
    }
    if (e.attempt !== attempt.attempt) problems.push(`event ${e.id} ${e.type} is for attempt ${e.attempt}, the open claim is attempt ${attempt.attempt}`);
    if (e.agentId !== attempt.agentId) problems.push(`event ${e.id} ${e.type} is by agent ${e.agentId}, attempt ${attempt.attempt} was claimed by ${attempt.agentId}`);
    attempt.outcome = outcome;
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
        held = { attempt: e.attempt ?? -1, claimEventId: e.id, agentId: e.agentId, outcome: null, errorCode: null, retryable: null };
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
        else if (e.at < int(obj(e.data).leaseExpiresAt, Number.MAX_SAFE_INTEGER)) problems.push(`event ${e.id} lease:expired at ${e.at}, before the lease's expiry ${JSON.stringify(obj(e.data).leaseExpiresAt)}`);
        expiring = held;
        held = null;
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
        }
        expiring = null;
        held = null;
        break;
      }
      case "task:blocked":
        if (held !== null) problems.push(`event ${e.id}: blocked while attempt ${held.attempt} is claimed`);
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

/** What the adapter of `kind` does on attempt `attempt`: succeed, or fail (retryable or not). */
export function adapterOutcome(kind: ChaosKind, payload: Json | null, attempt: number): { ok: true } | { ok: false; retryable: boolean } {
  const p = obj(payload);
  switch (kind) {
    case "echo":
    case "sleep":
    case "shell":
    case "planner":
      return { ok: true };
    case "flaky":
      return attempt > int(p.failTimes, 1) ? { ok: true } : { ok: false, retryable: true };
    case "fail":
      return { ok: false, retryable: p.retryable !== false };
  }
}

/** The outcome the policy requires for an attempt, given what happened to it (adapter result or lease expiry). */
function expectedOutcome(kind: ChaosKind, task: TaskRecord, a: AttemptRecord): Outcome {
  const last = a.attempt >= task.maxAttempts;
  if (a.outcome === "expired-retrying" || a.outcome === "expired-failed") return last ? "expired-failed" : "expired-retrying";
  if (a.outcome === "released") return "released";
  const adapter = adapterOutcome(kind, task.payload, a.attempt);
  if (adapter.ok) return "completed";
  return adapter.retryable && !last ? "retrying" : "failed";
}

const TERMINAL = new Set(["completed", "failed"]);
const BAD_DEPENDENCY = new Set(["failed", "cancelled", "blocked"]);

/** Checks one task against its events, its dependencies, its children and its kind's policy. */
export function checkTask(task: TaskRecord, events: readonly TaskEvent[], context: { byId: Map<number, TaskRecord>; events: Map<number, TaskEvent[]>; children: TaskRecord[]; shellRuns: Set<string> }): TaskVerdict {
  const read = readAttempts(events);
  const problems = [...read.problems];
  const kind = task.persona;
  const verdict: TaskVerdict = { taskId: task.id, kind, attempts: read.attempts, completions: read.completions, openClaim: read.openClaim, problems };
  if (!isChaosKind(kind)) {
    problems.push(`unknown persona ${kind}`);
    return verdict;
  }
  if (task.attempts > task.maxAttempts) problems.push(`attempts ${task.attempts} > maxAttempts ${task.maxAttempts}`);
  const consumed = read.attempts.filter((a) => a.outcome !== null && a.outcome !== "released").length;
  if (!read.openClaim && task.attempts !== consumed) problems.push(`attempts column is ${task.attempts}, the events show ${consumed} attempts used`);

  // Each closed attempt against the adapter and the policy.
  for (const a of read.attempts) {
    if (a.outcome === null) continue;
    const expected = expectedOutcome(kind, task, a);
    if (a.outcome !== expected) problems.push(`attempt ${a.attempt}: ${a.outcome}${a.errorCode === null ? "" : ` (${a.errorCode})`}, the policy says ${expected}`);
    if ((a.outcome === "retrying" || a.outcome === "failed") && a.errorCode !== "ADAPTER_FAILED") problems.push(`attempt ${a.attempt}: failed with ${a.errorCode}, not the adapter's ADAPTER_FAILED`);
    if ((a.outcome === "expired-retrying" || a.outcome === "expired-failed") && a.errorCode !== "LEASE_EXPIRED") problems.push(`attempt ${a.attempt}: lease expiry recorded as ${a.errorCode}`);
  }

  // The final status against the last outcome.
  const settled = read.attempts.filter((a) => a.outcome !== null && a.outcome !== "released");
  const last = settled[settled.length - 1];
  const deps = task.dependsOn.map((id) => context.byId.get(id));
  if (deps.some((d) => d === undefined)) problems.push("a dependency is missing");
  const badDep = deps.some((d) => d !== undefined && BAD_DEPENDENCY.has(d.status));
  if (task.status === "blocked") {
    if (!badDep) problems.push("blocked, but no dependency failed, was cancelled or is blocked");
    if (read.attempts.length > 0) problems.push("blocked, but it was claimed");
  } else if (!TERMINAL.has(task.status)) {
    problems.push(`not terminal: ${task.status}${read.openClaim ? " (claimed, no outcome)" : ""}`);
  } else {
    if (badDep) problems.push(`${task.status}, yet a dependency is ${deps.find((d) => d !== undefined && BAD_DEPENDENCY.has(d.status))!.status}`);
    const wanted = task.status === "completed" ? ["completed"] : ["failed", "expired-failed"];
    if (last === undefined || last.outcome === null || !wanted.includes(last.outcome)) problems.push(`status ${task.status}, last outcome ${last?.outcome ?? "none"}`);
    if (read.openClaim) problems.push(`status ${task.status} with a claim still open`);
  }

  // No claim before every dependency completed (DESIGN rule 2).
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
    if (kind === "flaky" || kind === "shell") {
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
    violations: [],
  };
  if (snapshot.integrity !== "ok") figures.violations.push(`PRAGMA integrity_check: ${snapshot.integrity}`);
  figures.violations.push(...(snapshot.derived ?? []));
  for (const task of snapshot.tasks) {
    figures.byStatus[task.status] = (figures.byStatus[task.status] ?? 0) + 1;
    const events = snapshot.events.get(task.id) ?? [];
    const verdict = checkTask(task, events, { byId, events: snapshot.events, children: children.get(task.id) ?? [], shellRuns });
    figures.claims += verdict.attempts.length;
    figures.leaseExpiries += verdict.attempts.filter((a) => a.outcome === "expired-retrying" || a.outcome === "expired-failed").length;
    figures.releases += verdict.attempts.filter((a) => a.outcome === "released").length;
    if (task.persona === "shell") {
      figures.orphanShellRuns += verdict.attempts.filter((a) => a.outcome?.startsWith("expired") === true && shellRuns.has(`${task.id} ${a.attempt}`)).length;
    }
    const planned = task.persona === "planner" && task.status === "completed" ? plan({ title: task.title, payload: task.payload, persona: task.persona }).tasks!.length : 0;
    if (verdict.completions > 1 || (children.get(task.id)?.length ?? 0) > planned) figures.duplicates++;
    const terminal = TERMINAL.has(task.status) || (task.status === "blocked" && !verdict.problems.some((p) => p.startsWith("blocked")));
    if (!terminal || verdict.openClaim) figures.lost++;
    for (const problem of verdict.problems) figures.violations.push(`task ${task.id} (${verdict.kind} "${task.title}"): ${problem}`);
  }
  return figures;
}
