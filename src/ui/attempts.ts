/**
 * A task's attempts as the Task page shows them, rebuilt from its audit trail and its
 * recorded usage (src/ui/api.ts taskDetail).
 */
import type { Json, TaskEvent, UsageRecord } from "../store/index.js";

export interface Attempt {
  attempt: number;
  agentId: string | null;
  claimedAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
  outcome: string | null;
  error: Json | null;
  usage: UsageRecord | null;
}

const OUTCOMES: Record<string, string> = {
  "task:completed": "completed",
  "task:failed": "failed",
  "task:retrying": "retrying",
  "task:released": "released",
  "lease:expired": "expired",
  "task:cancelled": "cancelled",
  // An attempt that asked a person (ctx.askHuman, ::roster:ask, MCP request_input) ends parked, uncounted.
  "input:requested": "asked",
};

/**
 * Every attempt, from the audit trail (claims, starts, outcomes) joined with its recorded
 * usage. A retry starts the count again at 1 (`task:retried`), so attempts are told apart by
 * their claim, not their number alone; a usage record goes to the latest attempt of its
 * number claimed before it was recorded.
 */
export function attemptsOf(events: TaskEvent[], usage: UsageRecord[]): Attempt[] {
  const all: Attempt[] = [];
  let current = new Map<number, Attempt>();
  const get = (n: number): Attempt => {
    let a = current.get(n);
    if (a === undefined) {
      a = { attempt: n, agentId: null, claimedAt: null, startedAt: null, endedAt: null, outcome: null, error: null, usage: null };
      current.set(n, a);
      all.push(a);
    }
    return a;
  };
  for (const e of events) {
    if (e.type === "task:retried") {
      current = new Map();
      continue;
    }
    if (e.attempt === null || e.attempt < 1) continue;
    if (e.type === "task:claimed") {
      // A claim of a number already seen (after a retry or a reap) is a new attempt.
      if (current.get(e.attempt)?.claimedAt != null) current.delete(e.attempt);
      const a = get(e.attempt);
      a.claimedAt = e.at;
      a.agentId = e.agentId;
      continue;
    }
    const a = get(e.attempt);
    if (e.type === "task:started") a.startedAt = e.at;
    else if (OUTCOMES[e.type] !== undefined || e.type.startsWith("lease:")) {
      a.outcome = OUTCOMES[e.type] ?? e.type.replace(/^\w+:/, "");
      a.endedAt = e.at;
      const data = e.data as { error?: Json } | null;
      if (data !== null && typeof data === "object" && !Array.isArray(data) && data.error !== undefined) a.error = data.error;
      a.agentId ??= e.agentId;
    }
  }
  for (const u of usage) {
    const match = all.filter((a) => a.attempt === u.attempt && (a.claimedAt === null || a.claimedAt <= u.at)).at(-1);
    if (match !== undefined) match.usage = u;
  }
  return all;
}
