import type { EconomicsStatements } from "./budgets.js";
import type { TransactionRunner } from "./database.js";
import type { NormalUsage } from "../usage-values.js";
import type { RecordParams, UsageStatements } from "./usage.js";

/**
 * What settled attempts spent (docs/ARCHITECTURE.md rule 15; docs/economics.md), inside the
 * transaction that settles them: their usage rows and the running spend totals
 * (UsageStatements.recordMany, three statements for a batch), then the hold a spent budget
 * puts on its task or goal, and a usage:recorded event for each.
 */
export class SpendRecorder {
  constructor(
    private readonly usage: UsageStatements,
    private readonly gates: EconomicsStatements,
    private readonly tx: TransactionRunner,
  ) {}

  /** One settled attempt's spend, with its outcome; nothing when it reported no usage. */
  one(taskId: number, attempt: number, agentId: string | null, claimedAt: number | null, outcome: string, usage: NormalUsage | null, now: number): void {
    if (usage !== null) this.many([{ taskId, attempt, agentId, outcome, claimedAt, usage, now }]);
  }

  /** A settle batch's spend: the usage rows and totals in three statements, then each attempt's holds. */
  many(list: RecordParams[]): void {
    if (list.length === 0) return;
    const recorded = this.usage.recordMany(list);
    const mayMove = this.gates.holdsMayMove();
    recorded.forEach((r, i) => {
      if (r === null) return;
      const { usage, now } = list[i]!;
      if (mayMove(r)) this.gates.afterUsage(r, now);
      this.tx.emit("usage:recorded", {
        taskId: r.taskId,
        persona: r.persona,
        provider: r.provider,
        model: r.model,
        tokens: { input: usage.inputTokens, output: usage.outputTokens, cacheRead: usage.cacheReadTokens, cacheWrite: usage.cacheWriteTokens, reasoning: usage.reasoningTokens },
        costUsd: r.costUsd,
      });
    });
  }
}
