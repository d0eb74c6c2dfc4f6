import { readAttempts } from "../../bench/chaos/checks.js";
import type { Json, TaskEvent } from "../../src/store/index.js";

/**
 * The multi-host run's verdict (issue 19, acceptance), from what the database
 * holds: every task's final row and its whole `task_events` trail, beside what
 * the test did to each holder (killed, cut off, never touched) marked by the
 * largest task_events id committed just before each fault (an event clock that
 * needs no wall clock: hosts' clocks differ by design). Pure, so its rules are
 * tested on hand-made trails too.
 */

/** What the policy says a task ends as. */
export type Expected = "completed" | "failed" | "blocked";

export interface FinalTask {
  id: number;
  persona: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  dependsOn: number[];
  /** last_error.code, when failed. */
  errorCode: string | null;
}

/** A holder of leases (supervisor or MCP worker) and what happened to it, as task_events ids. */
export interface Holder {
  label: string;
  /** SIGKILLed after this event id: a lease reaped by an event after it was legitimately collected. */
  killedAfter?: number;
  /**
   * Its link cut after event `from` and restored at `to`: a lease claimed before the
   * restore and reaped after the cut was held across the outage, and may be collected.
   */
  cut?: { from: number; to: number };
}

export interface Verdict {
  /** Not terminal as its policy says, or left with a claim open. */
  lost: string[];
  /** More than one task:completed. */
  duplicates: string[];
  /** lease:expired of a holder that was alive and connected (or of no known holder). */
  liveReaps: string[];
  /** A write by a holder for an attempt after that attempt's lease was collected: a late write accepted. */
  lateWritesAccepted: string[];
  /** Ended other than its policy says, attempts past the policy, claims before a dependency completed, broken trails. */
  violations: string[];
  figures: {
    tasks: number;
    byStatus: Record<string, number>;
    claims: number;
    /** Reaped leases, by holder label. */
    reapedByHolder: Record<string, number>;
    /** Completions, by holder label. */
    completedByHolder: Record<string, number>;
    /** Claims by the cut host's agent after its link came back. */
    claimsAfterRestore: Record<string, number>;
  };
}

const WRITES_OF_AN_ATTEMPT = new Set(["task:started", "task:progress", "task:completed", "task:retrying", "task:failed", "task:released"]);

function code(data: Json | null): string | null {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return null;
  const error = data.error;
  if (error === null || error === undefined || typeof error !== "object" || Array.isArray(error)) return null;
  return typeof error.code === "string" ? error.code : null;
}

export function judgeMultiHost(input: {
  tasks: readonly FinalTask[];
  /** Each task's events in id order. */
  events: ReadonlyMap<number, readonly TaskEvent[]>;
  expected: ReadonlyMap<number, Expected>;
  /** By agent id. */
  holders: ReadonlyMap<string, Holder>;
}): Verdict {
  const v: Verdict = {
    lost: [],
    duplicates: [],
    liveReaps: [],
    lateWritesAccepted: [],
    violations: [],
    figures: { tasks: input.tasks.length, byStatus: {}, claims: 0, reapedByHolder: {}, completedByHolder: {}, claimsAfterRestore: {} },
  };
  const byId = new Map(input.tasks.map((t) => [t.id, t]));
  const label = (agentId: string | null) => input.holders.get(agentId ?? "")?.label ?? `unknown agent ${agentId}`;
  const count = (to: Record<string, number>, key: string) => (to[key] = (to[key] ?? 0) + 1);
  for (const task of input.tasks) {
    const events = input.events.get(task.id) ?? [];
    const name = `task ${task.id} (${task.persona})`;
    count(v.figures.byStatus, task.status);
    const read = readAttempts(events);
    v.figures.claims += read.attempts.length;
    for (const p of read.problems) if (!p.endsWith("task:completed events")) v.violations.push(`${name}: ${p}`);
    if (read.completions > 1) v.duplicates.push(`${name}: ${read.completions} task:completed events (${events.filter((e) => e.type === "task:completed").map((e) => `${e.id} by ${label(e.agentId)}`).join(", ")})`);

    // Terminal as the policy says.
    const expected = input.expected.get(task.id);
    if (expected === undefined) v.violations.push(`${name}: not in the plan`);
    if (!["completed", "failed", "blocked", "cancelled"].includes(task.status) || read.openClaim) {
      v.lost.push(`${name}: ${task.status}${read.openClaim ? " with a claim and no outcome" : ""}, the policy says ${expected}`);
    } else if (expected !== undefined && task.status !== expected) {
      v.violations.push(`${name}: ended ${task.status}${task.errorCode === null ? "" : ` (${task.errorCode})`}, the policy says ${expected}`);
    }
    if (task.attempts > task.maxAttempts) v.violations.push(`${name}: ${task.attempts} attempts, the policy allows ${task.maxAttempts}`);
    if (task.status === "blocked" && !task.dependsOn.some((d) => ["failed", "blocked", "cancelled"].includes(byId.get(d)?.status ?? ""))) {
      v.violations.push(`${name}: blocked, but no dependency failed`);
    }

    // No claim before every dependency completed (docs/ARCHITECTURE.md, rule 2).
    for (const dep of task.dependsOn) {
      const done = (input.events.get(dep) ?? []).find((e) => e.type === "task:completed");
      for (const a of read.attempts) {
        if (done === undefined || done.id > a.claimEventId) v.violations.push(`${name}: attempt ${a.attempt} claimed (event ${a.claimEventId}) before dependency ${dep} completed`);
      }
    }

    for (const e of events) if (e.type === "task:completed") count(v.figures.completedByHolder, label(e.agentId));
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (e.type === "task:claimed") {
        const cut = input.holders.get(e.agentId ?? "")?.cut;
        if (cut !== undefined && e.id > cut.to) count(v.figures.claimsAfterRestore, label(e.agentId));
        continue;
      }
      if (e.type !== "lease:expired") continue;
      count(v.figures.reapedByHolder, label(e.agentId));
      const holder = input.holders.get(e.agentId ?? "");
      const claim = events.slice(0, i).reverse().find((c) => c.type === "task:claimed" && c.attempt === e.attempt);
      const killed = holder?.killedAfter !== undefined && e.id > holder.killedAfter;
      const cutOff = holder?.cut !== undefined && e.id > holder.cut.from && claim !== undefined && claim.id <= holder.cut.to;
      if (!killed && !cutOff) {
        const why = holder === undefined ? "no known holder" : holder.killedAfter !== undefined ? `killed after event ${holder.killedAfter}` : holder.cut !== undefined ? `cut after event ${holder.cut.from}, restored at ${holder.cut.to}, claim event ${claim?.id}` : "never killed or cut";
        v.liveReaps.push(`${name}: lease of attempt ${e.attempt} held by ${label(e.agentId)} collected (event ${e.id}) while its holder was alive and connected (${why})`);
      }
      // Fencing: after the collection (and the reaper's own retrying/failed right after it), nothing of that attempt by its holder
      // until the same holder claims the task again: a reaped attempt is not counted (rule 6), so a new claim may reuse its number.
      const pairedOutcome = events[i + 1] !== undefined && (events[i + 1]!.type === "task:retrying" || events[i + 1]!.type === "task:failed") ? i + 1 : i;
      for (const later of events.slice(pairedOutcome + 1)) {
        if (later.type === "task:claimed" && later.agentId === e.agentId) break;
        if (later.agentId === e.agentId && later.attempt === e.attempt && WRITES_OF_AN_ATTEMPT.has(later.type)) {
          v.lateWritesAccepted.push(`${name}: ${later.type} (event ${later.id}${code(later.data) === null ? "" : `, ${code(later.data)}`}) by ${label(later.agentId)} for attempt ${e.attempt}, whose lease was collected at event ${e.id}`);
        }
      }
    }
  }
  return v;
}
