import { RosterError } from "../../errors.js";
import { costOf, priceFor, totalTokens, type ModelPrice } from "../../policy/prices.js";
import type { CostGroup, CostRow, UsageRecord } from "../economics.js";
import { costRow, toUsageRecord, type UsageRow } from "../rows.js";
import type { AttemptSpend, NormalUsage } from "../usage-values.js";

// The transitions of both engines read these from here.
export { addUsage, lenientUsage, usageOfSettlement, validateUsage, type NormalUsage } from "../usage-values.js";
import { BUDGET_WINDOWS } from "../economics.js";
import type { Db } from "./database.js";

/** The windows spend is kept for, per persona, provider and overall (task and goal: all time only). */
const SPEND_WINDOWS_MS = [0, BUDGET_WINDOWS.hour, BUDGET_WINDOWS.day];
/** One settled attempt's usage, as record() takes it. */
export type RecordParams = AttemptSpend;

/** What a recorded attempt added, for the budget checks and the metrics. */
export interface Recorded {
  taskId: number;
  rootId: number;
  persona: string;
  provider: string;
  model: string | null;
  tokens: number;
  costUsd: number | null;
  usage: NormalUsage;
}

/**
 * Usage rows and the running spend totals (docs/ARCHITECTURE.md rule 15): record() runs inside the
 * transaction that settles the attempt; the reports read the usage table.
 */
export class UsageStatements {
  private readonly taskInfo;
  private readonly insertUsage;
  private readonly upsertSpend;
  private readonly userPrices;
  private readonly setPriceStmt;
  private readonly byTask;
  private readonly reports = new Map<string, ReturnType<Db["prepare"]>>();
  private readonly totalStmt;

  constructor(private readonly db: Db) {
    this.taskInfo = db.prepare(`
      SELECT coalesce(t.root_id, t.id) AS root_id, t.persona_id, coalesce(p.config ->> '$.provider', 'persona:' || p.id) AS provider
      FROM tasks t JOIN personas p ON p.id = t.persona_id WHERE t.id = ?`);
    this.insertUsage = db.prepare(`
      INSERT INTO usage (task_id, root_id, attempt, agent_id, persona_id, provider, model, outcome, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, reasoning_tokens, turns, duration_ms, cost_usd, cost_source, at)
      VALUES (@taskId, @rootId, @attempt, @agentId, @persona, @provider, @model, @outcome, @inputTokens, @outputTokens,
        @cacheReadTokens, @cacheWriteTokens, @reasoningTokens, @turns, @durationMs, @costUsd, @costSource, @now)`);
    // Rows: [scope, key, windowMs, windowStart].
    this.upsertSpend = db.prepare(`
      INSERT INTO spend (scope, key, window_ms, window_start, tokens, cost_usd)
      SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, @tokens, @cost FROM json_each(@rows) WHERE true
      ON CONFLICT (scope, key, window_ms, window_start) DO UPDATE SET tokens = tokens + excluded.tokens, cost_usd = cost_usd + excluded.cost_usd`);
    this.userPrices = db.prepare("SELECT model, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok FROM model_prices");
    this.setPriceStmt = db.prepare(`
      INSERT INTO model_prices (model, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, updated_at)
      VALUES (@model, @inputPerMTok, @outputPerMTok, @cacheReadPerMTok, @cacheWritePerMTok, @now)
      ON CONFLICT (model) DO UPDATE SET input_per_mtok = excluded.input_per_mtok, output_per_mtok = excluded.output_per_mtok,
        cache_read_per_mtok = excluded.cache_read_per_mtok, cache_write_per_mtok = excluded.cache_write_per_mtok, updated_at = excluded.updated_at`);
    this.byTask = db.prepare(`SELECT * FROM usage WHERE task_id = ? ORDER BY attempt, id`);
    this.totalStmt = db.prepare(`SELECT 'total' AS key, ${AGGREGATES} FROM usage WHERE at >= @since AND (@rootId IS NULL OR root_id = @rootId)`);
  }

  /** Records one attempt's usage and adds it to every running total it counts in. */
  record(p: RecordParams): Recorded | null {
    const info = this.taskInfo.get(p.taskId) as { root_id: number; persona_id: string; provider: string } | undefined;
    if (info === undefined) return null;
    const u = p.usage;
    let costUsd = u.costUsd;
    let costSource: UsageRecord["costSource"] = "reported";
    if (costUsd === null) {
      const price = priceFor(u.model, this.prices());
      costSource = price === null ? "unpriced" : "priced";
      costUsd = price === null ? null : costOf(u, price);
    }
    this.insertUsage.run({
      taskId: p.taskId,
      rootId: info.root_id,
      attempt: p.attempt,
      agentId: p.agentId,
      persona: info.persona_id,
      provider: info.provider,
      model: u.model,
      outcome: p.outcome,
      inputTokens: u.inputTokens,
      outputTokens: u.outputTokens,
      cacheReadTokens: u.cacheReadTokens,
      cacheWriteTokens: u.cacheWriteTokens,
      reasoningTokens: u.reasoningTokens,
      turns: u.turns,
      durationMs: p.claimedAt === null ? null : Math.max(0, p.now - p.claimedAt),
      costUsd,
      costSource,
      now: p.now,
    });
    const tokens = totalTokens(u);
    const rows: Array<[string, string, number, number]> = [
      ["task", String(p.taskId), 0, 0],
      ["goal", String(info.root_id), 0, 0],
    ];
    for (const windowMs of SPEND_WINDOWS_MS) {
      const start = windowMs === 0 ? 0 : Math.floor(p.now / windowMs) * windowMs;
      rows.push(["persona", info.persona_id, windowMs, start], ["provider", info.provider, windowMs, start], ["global", "", windowMs, start]);
    }
    this.upsertSpend.run({ rows: JSON.stringify(rows), tokens, cost: costUsd ?? 0 });
    return { taskId: p.taskId, rootId: info.root_id, persona: info.persona_id, provider: info.provider, model: u.model, tokens, costUsd, usage: u };
  }

  prices(): Record<string, ModelPrice> {
    const out: Record<string, ModelPrice> = {};
    for (const r of this.userPrices.all() as Array<Record<string, number> & { model: string }>) {
      out[r.model] = { inputPerMTok: r.input_per_mtok!, outputPerMTok: r.output_per_mtok!, cacheReadPerMTok: r.cache_read_per_mtok!, cacheWritePerMTok: r.cache_write_per_mtok! };
    }
    return out;
  }

  setPrice(model: string, price: ModelPrice, now: number): void {
    if (model.trim() === "" || model.length > 200) throw new RosterError("VALIDATION", "model: must be a model name of 1-200 characters", { details: { field: "model" } });
    for (const [field, value] of Object.entries(price)) {
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
        throw new RosterError("VALIDATION", `${field}: must be a non-negative number of USD per million tokens, got ${JSON.stringify(value)}`, { details: { field } });
      }
    }
    this.setPriceStmt.run({ model, ...price, now });
  }

  usageOf(taskId: number): UsageRecord[] {
    return (this.byTask.all(taskId) as UsageRow[]).map(toUsageRecord);
  }

  cost(by: CostGroup, since: number, rootId: number | null): CostRow[] {
    let stmt = this.reports.get(by);
    if (stmt === undefined) {
      const key = {
        persona: "persona_id",
        goal: "CAST(root_id AS TEXT)",
        model: "coalesce(model, '(unknown)')",
        agent: "coalesce(agent_id, '(none)')",
        provider: "provider",
        // UTC day of the settlement.
        day: "strftime('%Y-%m-%d', at / 1000, 'unixepoch')",
      }[by];
      stmt = this.db.prepare(`
        SELECT ${key} AS key, ${AGGREGATES} FROM usage WHERE at >= @since AND (@rootId IS NULL OR root_id = @rootId)
        GROUP BY 1 ORDER BY cost_usd DESC, tokens DESC, key`);
      this.reports.set(by, stmt);
    }
    return (stmt.all({ since, rootId }) as CostRow[]).map(costRow);
  }

  total(since: number, rootId: number | null): CostRow {
    return costRow(this.totalStmt.get({ since, rootId }) as CostRow);
  }
}

const AGGREGATES = `count(*) AS attempts, coalesce(sum(input_tokens), 0) AS inputTokens, coalesce(sum(output_tokens), 0) AS outputTokens,
  coalesce(sum(cache_read_tokens), 0) AS cacheReadTokens, coalesce(sum(cache_write_tokens), 0) AS cacheWriteTokens,
  coalesce(sum(reasoning_tokens), 0) AS reasoningTokens,
  coalesce(sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) AS tokens,
  coalesce(sum(cost_usd), 0) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced`;
