import { RosterError } from "../../errors.js";
import { hasChildren, invalidOutputError, questionOf, splitSettlements } from "../settle.js";
import type { ClaimParams, ClaimedTask, InvalidOutput, Settlement, SettlementResult } from "../types.js";
import type { Claims } from "./claims.js";
import type { TransactionRunner } from "./database.js";
import type { HumanStatements } from "./humans.js";
import type { Transitions } from "./transitions.js";

/**
 * The bodies of the SQLite store's claim and settle paths (docs/ARCHITECTURE.md, "One path per
 * transition"), each run inside a write the caller opened: tasks.claim, tasks.settle and
 * tasks.settleAndClaim (./store.ts) are these in their transactions.
 */
export class LeasePaths {
  constructor(
    private readonly tx: TransactionRunner,
    private readonly transitions: Transitions,
    private readonly humans: HumanStatements,
    private readonly claims: Claims,
    private readonly maxPayloadBytes: number,
  ) {}

  /** The claim path: a persona's best ready tasks, or one named task. */
  claim(p: ClaimParams): ClaimedTask[] {
    if (p.taskId === undefined) return this.claims.claim(p);
    const one = this.claims.claimOne({ ...p, taskId: p.taskId });
    return one === null ? [] : [one];
  }

  /**
   * The settle path: completions without children whose result and usage validate go
   * through completeMany, a few statements for the whole batch; the rest (failures,
   * releases, children, bad output) one by one, first, in batch order.
   */
  settle(settlements: readonly Settlement[], now: number, invalid: InvalidOutput): SettlementResult[] {
    const results: SettlementResult[] = new Array<SettlementResult>(settlements.length);
    const { fast, slow } = splitSettlements(settlements, this.maxPayloadBytes);
    for (const { s, index } of slow) results[index] = this.settleOne(s, now, invalid);
    if (fast.length > 0) this.transitions.completeMany(fast, now).forEach((result, i) => (results[fast[i]!.index] = result));
    return results;
  }

  /**
   * One settlement. A completion with children runs inside a savepoint, so a bad
   * child list fails its own task only; without children, complete() validates
   * the result before its first write, so there is nothing to roll back and the
   * savepoint (a transaction object per task on the hot path) is skipped.
   */
  settleOne(s: Settlement, now: number, invalid: InvalidOutput): SettlementResult {
    const { transitions, humans } = this;
    if (s.kind === "complete") {
      try {
        return hasChildren(s) ? this.tx.savepoint(() => transitions.complete(humans.gatePlan({ ...s, now }))) : transitions.complete({ ...s, now });
      } catch (error) {
        if (!(error instanceof RosterError) || invalid === "refuse") throw error;
        return transitions.fail({ taskId: s.taskId, leaseToken: s.leaseToken, now, error: invalidOutputError(error) });
      }
    }
    if (s.kind === "fail") {
      const question = questionOf(s);
      if (question === null) return transitions.fail({ ...s, now });
      return humans.ask({ taskId: s.taskId, leaseToken: s.leaseToken, question, now });
    }
    return transitions.release({ ...s, now });
  }
}
