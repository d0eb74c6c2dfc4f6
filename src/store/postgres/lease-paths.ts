import { RosterError } from "../../errors.js";
import type { LivenessJudge } from "../liveness.js";
import { checkClaimParams, hasChildren, invalidOutputError, questionOf, splitSettlements, type FastCompletion } from "../settle.js";
import type { ClaimParams, ClaimedTask, CompleteResult, InvalidOutput, Settlement, SettlementResult } from "../types.js";
import { newLeaseToken } from "../lease-token.js";
import type { BackendRef, Tx } from "./database.js";
import type { ClaimedRow } from "./claims.js";
import type { PgHumans } from "./humans.js";
import type { PgLostClaims } from "./lost-claims.js";
import { PG_COMPLETE_BATCH_SQL, type CompleteBatchRow } from "./batch-sql.js";
import type { PgTransitions } from "./transitions.js";

export interface PgLeasePathsContext {
  /** A transaction (PgTransactions.write; `backend` told which server session it was sent on). */
  write<T>(name: string, body: (t: Tx) => Promise<T>, backend?: BackendRef): Promise<T>;
  /** One statement as a whole transaction (PgTransactions.single). */
  single<R, T>(name: string, sql: string, values: unknown[], then: (rows: R[], emit: Tx["emit"]) => T, backend?: BackendRef): Promise<T>;
  judge: LivenessJudge;
  transitions: PgTransitions;
  humans: PgHumans;
  /** Claims whose answer was lost, released once the connection is back (lost-claims.ts). */
  lostClaims: PgLostClaims;
  maxPayloadBytes: number;
  /** The store's NOTIFY channel (null before its migrations ran). */
  channel(): string | null;
}

/**
 * The lease paths of the PostgreSQL store (docs/ARCHITECTURE.md, "One path per transition"):
 * claim and settle. The plain case of each is one statement sent alone (a function of
 * migrations/postgres/0010 and 0011: one round trip, one commit); what needs more
 * (a gate of the persona set, dependents to count down, a breaker, usage to record,
 * failures, children) goes the transactional way, the reference those functions follow.
 * No settleAndClaim here (the Store's optional cycle in one transaction): measured with both
 * in one statement, a supervisor's settles and claims no longer overlap on two connections,
 * and 20,000 no-op tasks ran at 0.74x (paired, 6 rounds, load 16-23).
 */
export function pgLeasePaths(ctx: PgLeasePathsContext) {
  const { write, single, judge, transitions, humans, maxPayloadBytes } = ctx;
  const noteClaimed = (claimed: readonly ClaimedTask[]) =>
    judge.noteLeases(claimed.map((c) => ({ taskId: c.id, leaseToken: c.leaseToken, stamp: c.leaseExpiresAt, leaseMs: c.leaseMs })));

  const settleOne = async (t: Tx, s: Settlement, now: number, invalid: InvalidOutput): Promise<SettlementResult> => {
    if (s.kind === "complete") {
      try {
        return hasChildren(s)
          ? await t.savepoint(async () => transitions.complete(t, await humans.gatePlan(t, { ...s, now })))
          : await transitions.complete(t, { ...s, now });
      } catch (error) {
        if (!(error instanceof RosterError) || invalid === "refuse") throw error;
        return transitions.fail(t, { taskId: s.taskId, leaseToken: s.leaseToken, now, error: invalidOutputError(error) });
      }
    }
    if (s.kind === "fail") {
      const question = questionOf(s);
      if (question === null) return transitions.fail(t, { ...s, now });
      return humans.ask(t, { taskId: s.taskId, leaseToken: s.leaseToken, question, now });
    }
    return transitions.release(t, { ...s, now });
  };

  /** The transactional claim; `triedOneTrip`: the one-round-trip claim took nothing just before. */
  const claimInTransaction = async (p: ClaimParams, token: string, backend: BackendRef, triedOneTrip: boolean): Promise<ClaimedTask[]> => {
    const claimed = await write(
      "tasks.claim",
      async (t) => {
        if (p.taskId === undefined) return transitions.claims.claim(t, p, token, triedOneTrip);
        const one = await transitions.claims.claimOne(t, { ...p, taskId: p.taskId }, token);
        return one === null ? [] : humans.withInputs(t, [one]);
      },
      backend,
    );
    noteClaimed(claimed);
    return claimed;
  };

  const claimWith = async (p: ClaimParams, token: string, backend: BackendRef): Promise<ClaimedTask[]> => {
    // The plain claim in one round trip when it may be tried (it brings each task's answered
    // questions itself); the transactional claim when it took nothing.
    const trip = p.taskId === undefined ? transitions.claims.oneTrip(p, token) : null;
    if (trip !== null) {
      const claimed = await single<ClaimedRow, ClaimedTask[]>("tasks.claim", trip.sql, trip.values, (rows, emit) => transitions.claims.fromOneTrip(rows, p, emit), backend);
      if (claimed.length > 0) {
        noteClaimed(claimed);
        return claimed;
      }
    }
    return claimInTransaction(p, token, backend, trip !== null);
  };

  const claim = async (p: ClaimParams): Promise<ClaimedTask[]> => {
    checkClaimParams(p);
    // One lease token prefix for the call: a claim whose answer is lost (DATABASE_IO) is known by
    // it, and its rows are released once the connection is back (rule 17, lost-claims.ts).
    const token = newLeaseToken();
    const backend: BackendRef = { pid: null };
    try {
      return await claimWith(p, token, backend);
    } catch (error) {
      ctx.lostClaims.failed({ token, agentId: p.agentId, backend }, error);
      throw error;
    }
  };

  /** A batch of completions only, none with usage, may go in one statement (roster_complete_batch's fallback aside). */
  const plainBatch = (fast: FastCompletion[], slow: unknown[]) => slow.length === 0 && fast.length > 0 && fast.every((f) => f.usage === null);
  const batchValues = (fast: FastCompletion[], now: number) => [fast.map((f) => f.taskId), fast.map((f) => f.leaseToken), fast.map((f) => f.resultJson), now, ctx.channel()];
  const placed = (count: number, fast: FastCompletion[], done: CompleteResult[]) => {
    const results = new Array<SettlementResult>(count);
    done.forEach((r, i) => (results[fast[i]!.index] = r));
    return results;
  };

  const settleInTransaction = (settlements: Settlement[], now: number, invalid: InvalidOutput, fast: FastCompletion[], slow: Array<{ s: Settlement; index: number }>) =>
    write("tasks.settle", async (t) => {
      const results = new Array<SettlementResult>(settlements.length);
      // A batch with both kinds locks all its rows in task id order first: completeMany then the
      // rest, each in id order, would not be one order (PgTransitions.lockInIdOrder).
      if (fast.length > 0 && slow.length > 0) await transitions.lockInIdOrder(t, settlements.map((s) => s.taskId));
      if (fast.length > 0) (await transitions.completeMany(t, fast, now)).forEach((r, i) => (results[fast[i]!.index] = r));
      for (const { s, index } of [...slow].sort((a, b) => a.s.taskId - b.s.taskId)) results[index] = await settleOne(t, s, now, invalid);
      return results;
    });

  const settle = async (p: { settlements: Settlement[]; now: number; invalid?: InvalidOutput }): Promise<SettlementResult[]> => {
    // Completions without children whose result and usage validate go through completeMany, a few
    // statements for the batch; the rest (failures, releases, children, bad output) one by one, in
    // task id order. No task appears twice in a batch (one outcome per attempt).
    const { fast, slow } = splitSettlements(p.settlements, maxPayloadBytes);
    // A plain batch first in one round trip (PG_COMPLETE_BATCH_SQL), which writes nothing and says
    // so when a task has dependents or a persona a breaker.
    if (plainBatch(fast, slow)) {
      const done = await single<CompleteBatchRow, CompleteResult[] | null>("tasks.settle", PG_COMPLETE_BATCH_SQL, batchValues(fast, p.now), (rows, emit) =>
        transitions.fromCompleteBatch(rows, fast, emit),
      );
      if (done !== null) return placed(p.settlements.length, fast, done);
    }
    return settleInTransaction(p.settlements, p.now, p.invalid ?? "fail", fast, slow);
  };

  return { claim, settle, settleOne };
}
