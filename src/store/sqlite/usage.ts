import { RosterError } from "../../errors.js";
import { costOf, priceFor, totalTokens, type ModelPrice } from "../../policy/prices.js";
import type { CostGroup, CostRow, UsageRecord } from "../economics.js";
import { costRow, toUsageRecord, type UsageRow } from "../rows.js";
import type { AttemptSpend, NormalUsage } from "../usage-values.js";

// The transitions of both engines read these from here.
import { BUDGET_WINDOWS } from "../economics.js";
import type { Db } from "./database.js";

/** The windows spend is kept for, per persona, provider and overall (task and goal: all time only). */
const SPEND_WINDOWS_MS = [0, BUDGET_WINDOWS.hour, BUDGET_WINDOWS.day];
/** One settled attempt's usage, as record() takes it. */
export type RecordParams = AttemptSpend;

/** A spend row: [scope, key, windowMs, windowStart, tokens, costUsd]. */
type SpendRow = [string, string, number, number, number, number];

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
  /** Whether the task's own policy sets a budget (maxCostUsd, maxTokens): its holds may move. */
  ownBudget: boolean;
}

/**
 * Usage rows and the running spend totals (docs/ARCHITECTURE.md rule 15): record() runs inside the
 * transaction that settles the attempt; the reports read the usage table.
 */
export class UsageStatements {
  private readonly taskInfoMany;
  private readonly insertUsageMany;
  private readonly addSpend;
  private readonly setSpend;
  private readonly spendNow;
  private readonly userPrices;
  private readonly setPriceStmt;
  private readonly byTask;
  private readonly reports = new Map<string, ReturnType<Db["prepare"]>>();
  private readonly totalStmt;

  constructor(private readonly db: Db) {
    // The tasks' goal, persona and provider, and whether a task's own policy sets a budget. @ids: a JSON array.
    this.taskInfoMany = db.prepare(`
      SELECT t.id, coalesce(t.root_id, t.id) AS root_id, t.persona_id, coalesce(p.config ->> '$.provider', 'persona:' || p.id) AS provider,
        (t.retry_policy ->> '$.maxCostUsd' IS NOT NULL OR t.retry_policy ->> '$.maxTokens' IS NOT NULL) AS own_budget
      FROM json_each(?) AS j JOIN tasks t ON t.id = j.value JOIN personas p ON p.id = t.persona_id`);
    // Rows: the usage table's columns in order (see recordMany), as a JSON array of arrays.
    this.insertUsageMany = db.prepare(`
      INSERT INTO usage (task_id, root_id, attempt, agent_id, persona_id, provider, model, outcome, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, reasoning_tokens, turns, duration_ms, cost_usd, cost_source, at)
      SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9,
        value ->> 10, value ->> 11, value ->> 12, value ->> 13, value ->> 14, value ->> 15, value ->> 16, value ->> 17
      FROM json_each(?) ORDER BY key`);
    // Rows: [scope, key, windowMs, windowStart, tokens, costUsd], each a distinct total: added to it.
    this.addSpend = db.prepare(`
      INSERT INTO spend (scope, key, window_ms, window_start, tokens, cost_usd)
      SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?) WHERE true
      ON CONFLICT (scope, key, window_ms, window_start) DO UPDATE SET tokens = tokens + excluded.tokens, cost_usd = cost_usd + excluded.cost_usd`);
    // The same rows, each the total's new value (computed from spendNow's).
    this.setSpend = db.prepare(`
      INSERT INTO spend (scope, key, window_ms, window_start, tokens, cost_usd)
      SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?) WHERE true
      ON CONFLICT (scope, key, window_ms, window_start) DO UPDATE SET tokens = excluded.tokens, cost_usd = excluded.cost_usd`);
    // Totals now, by primary key: rows [scope, key, windowMs, windowStart].
    this.spendNow = db.prepare(`
      SELECT j.key AS i, s.tokens, s.cost_usd FROM json_each(?) AS j
      JOIN spend s ON s.scope = j.value ->> 0 AND s.key = j.value ->> 1 AND s.window_ms = j.value ->> 2 AND s.window_start = j.value ->> 3`);
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
    return this.recordMany([p])[0] ?? null;
  }

  /**
   * record() for the attempts a settle batch settles (docs/ARCHITECTURE.md rule 15), in three
   * statements whatever their number: one read of their tasks and personas, one INSERT of
   * every usage row, one upsert of every spend row. The spend rows are applied one by one in
   * the order given, so every total adds up exactly as one record() after another would.
   * Results in input order; null for a task that does not exist.
   */
  recordMany(list: readonly RecordParams[]): Array<Recorded | null> {
    if (list.length === 0) return [];
    const infos = new Map(
      (this.taskInfoMany.all(JSON.stringify(list.map((p) => p.taskId))) as Array<{ id: number; root_id: number; persona_id: string; provider: string; own_budget: number }>).map(
        (r) => [r.id, r],
      ),
    );
    let prices: Record<string, ModelPrice> | undefined;
    const usageRows: unknown[] = [];
    const spendRows: unknown[] = [];
    const out = list.map((p): Recorded | null => {
      const info = infos.get(p.taskId);
      if (info === undefined) return null;
      const u = p.usage;
      let costUsd = u.costUsd;
      let costSource: UsageRecord["costSource"] = "reported";
      if (costUsd === null) {
        const price = priceFor(u.model, (prices ??= this.prices()));
        costSource = price === null ? "unpriced" : "priced";
        costUsd = price === null ? null : costOf(u, price);
      }
      // The usage table's columns, in USAGE_COLUMNS order.
      usageRows.push([
        p.taskId, info.root_id, p.attempt, p.agentId, info.persona_id, info.provider, u.model, p.outcome, u.inputTokens, u.outputTokens,
        u.cacheReadTokens, u.cacheWriteTokens, u.reasoningTokens, u.turns, p.claimedAt === null ? null : Math.max(0, p.now - p.claimedAt), costUsd, costSource, p.now,
      ]);
      const tokens = totalTokens(u);
      const cost = costUsd ?? 0;
      spendRows.push(["task", String(p.taskId), 0, 0, tokens, cost], ["goal", String(info.root_id), 0, 0, tokens, cost]);
      for (const windowMs of SPEND_WINDOWS_MS) {
        const start = windowMs === 0 ? 0 : Math.floor(p.now / windowMs) * windowMs;
        spendRows.push(["persona", info.persona_id, windowMs, start, tokens, cost], ["provider", info.provider, windowMs, start, tokens, cost], ["global", "", windowMs, start, tokens, cost]);
      }
      return { taskId: p.taskId, rootId: info.root_id, persona: info.persona_id, provider: info.provider, model: u.model, tokens, costUsd, usage: u, ownBudget: info.own_budget === 1 };
    });
    if (usageRows.length > 0) {
      this.insertUsageMany.run(JSON.stringify(usageRows));
      this.addToSpend(spendRows as SpendRow[]);
    }
    return out;
  }

  /**
   * Adds each row's tokens and cost to its total, in the order given. A total the batch adds to
   * once (a task's) is one upsert; one it adds to several times (the persona's, the provider's,
   * overall, a goal's) is read once and written once with the sum taken in the same order,
   * starting from its stored value, so it holds exactly the double that one upsert per
   * attempt would have left (the batch writes 2 rows per attempt plus ~9, not 11).
   */
  private addToSpend(rows: SpendRow[]): void {
    const byTotal = new Map<string, SpendRow[]>();
    for (const row of rows) {
      const id = `${row[0]}\u0000${row[1]}\u0000${row[2]}\u0000${row[3]}`;
      const list = byTotal.get(id);
      if (list === undefined) byTotal.set(id, [row]);
      else list.push(row);
    }
    const once: SpendRow[] = [];
    const many: SpendRow[][] = [];
    for (const list of byTotal.values()) {
      if (list.length === 1) once.push(list[0]!);
      else many.push(list);
    }
    if (once.length > 0) this.addSpend.run(JSON.stringify(once));
    if (many.length === 0) return;
    const stored = new Map(
      (this.spendNow.all(JSON.stringify(many.map((list) => list[0]!.slice(0, 4)))) as Array<{ i: number; tokens: number; cost_usd: number }>).map((r) => [r.i, r]),
    );
    const totals = many.map((list, i): SpendRow => {
      const now = stored.get(i);
      let tokens = now?.tokens;
      let cost = now?.cost_usd;
      for (const row of list) {
        tokens = tokens === undefined ? row[4] : tokens + row[4];
        cost = cost === undefined ? row[5] : cost + row[5];
      }
      const [scope, key, windowMs, windowStart] = list[0]!;
      return [scope, key, windowMs, windowStart, tokens!, cost!];
    });
    this.setSpend.run(JSON.stringify(totals));
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
