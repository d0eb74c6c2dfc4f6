import { RosterError } from "../../errors.js";
import { costOf, priceFor, totalTokens, type ModelPrice } from "../../policy/prices.js";
import type { CostGroup, CostRow, UsageRecord } from "../economics.js";
import type { AttemptSpend } from "../usage-values.js";
import { costRow, toUsageRecord, type UsageRow } from "../rows.js";
import type { Tx } from "./database.js";

type Q = Pick<Tx, "rows" | "one">;

/**
 * Usage per attempt on PostgreSQL (docs/ARCHITECTURE.md rule 15; docs/economics.md):
 * recorded in the transaction that settles the attempts, priced from the user's
 * model_prices or the defaults when the source reported no cost. A settlement batch's
 * attempts are written together at the end of its transaction (PgGates.within): one read
 * of their tasks, one of the prices, one INSERT, instead of three round trips an attempt.
 * What it returns goes to the running spend totals and the budget holds. The reports
 * read the usage table as the SQLite ones do.
 */
export async function recordUsage(tx: Tx, attempts: readonly AttemptSpend[]): Promise<SpentUsage[]> {
  if (attempts.length === 0) return [];
  const infos = new Map(
    (
      await tx.rows<{ id: number; root_id: number; persona_id: string; provider: string }>(
        `SELECT t.id, coalesce(t.root_id, t.id) AS root_id, t.persona_id, coalesce(p.config::jsonb ->> 'provider', 'persona:' || p.id) AS provider
         FROM tasks t JOIN personas p ON p.id = t.persona_id WHERE t.id = ANY($1::bigint[])`,
        [[...new Set(attempts.map((a) => a.taskId))]],
      )
    ).map((r) => [r.id, r]),
  );
  const userPrices = attempts.some((a) => a.usage.costUsd === null) ? await prices(tx) : {};
  const cols: unknown[][] = Array.from({ length: 18 }, () => []);
  const out: SpentUsage[] = [];
  for (const p of attempts) {
    const info = infos.get(p.taskId);
    if (info === undefined) continue;
    const u = p.usage;
    let costUsd = u.costUsd;
    let costSource: UsageRecord["costSource"] = "reported";
    if (costUsd === null) {
      const price = priceFor(u.model, userPrices);
      costSource = price === null ? "unpriced" : "priced";
      costUsd = price === null ? null : costOf(u, price);
    }
    [
      p.taskId,
      info.root_id,
      p.attempt,
      p.agentId,
      info.persona_id,
      info.provider,
      u.model,
      p.outcome,
      u.inputTokens,
      u.outputTokens,
      u.cacheReadTokens,
      u.cacheWriteTokens,
      u.reasoningTokens,
      u.turns,
      p.claimedAt === null ? null : Math.max(0, p.now - p.claimedAt),
      costUsd,
      costSource,
      p.now,
    ].forEach((v, i) => cols[i]!.push(v));
    tx.emit("usage:recorded", {
      taskId: p.taskId,
      persona: info.persona_id,
      provider: info.provider,
      model: u.model,
      tokens: { input: u.inputTokens, output: u.outputTokens, cacheRead: u.cacheReadTokens, cacheWrite: u.cacheWriteTokens, reasoning: u.reasoningTokens },
      costUsd,
    });
    out.push({ taskId: p.taskId, rootId: info.root_id, persona: info.persona_id, provider: info.provider, tokens: totalTokens(u), costUsd, now: p.now });
  }
  if (out.length === 0) return out;
  await tx.run(
    `INSERT INTO usage (task_id, root_id, attempt, agent_id, persona_id, provider, model, outcome, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, turns, duration_ms, cost_usd, cost_source, at)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[],
       $11::bigint[], $12::bigint[], $13::bigint[], $14::int[], $15::bigint[], $16::float8[], $17::text[], $18::bigint[])`,
    cols,
  );
  return out;
}

/** What one recorded attempt adds to the running spend totals. */
export interface SpentUsage {
  taskId: number;
  rootId: number;
  persona: string;
  provider: string;
  tokens: number;
  /** null: unpriced (counts as 0 USD in budgets; its tokens still count). */
  costUsd: number | null;
  now: number;
}

export async function prices(q: Q): Promise<Record<string, ModelPrice>> {
  const out: Record<string, ModelPrice> = {};
  for (const r of await q.rows<{ model: string; i: number; o: number; cr: number; cw: number }>(
    "SELECT model, input_per_mtok AS i, output_per_mtok AS o, cache_read_per_mtok AS cr, cache_write_per_mtok AS cw FROM model_prices",
  )) {
    out[r.model] = { inputPerMTok: r.i, outputPerMTok: r.o, cacheReadPerMTok: r.cr, cacheWritePerMTok: r.cw };
  }
  return out;
}

export async function setPrice(tx: Tx, model: string, price: ModelPrice, now: number): Promise<void> {
  if (model.trim() === "" || model.length > 200) throw new RosterError("VALIDATION", "model: must be a model name of 1-200 characters", { details: { field: "model" } });
  for (const [field, value] of Object.entries(price)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new RosterError("VALIDATION", `${field}: must be a non-negative number of USD per million tokens, got ${JSON.stringify(value)}`, { details: { field } });
    }
  }
  await tx.run(
    `INSERT INTO model_prices (model, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (model) DO UPDATE SET input_per_mtok = excluded.input_per_mtok, output_per_mtok = excluded.output_per_mtok,
       cache_read_per_mtok = excluded.cache_read_per_mtok, cache_write_per_mtok = excluded.cache_write_per_mtok, updated_at = excluded.updated_at`,
    [model, price.inputPerMTok, price.outputPerMTok, price.cacheReadPerMTok, price.cacheWritePerMTok, now],
  );
}

const AGGREGATES = `count(*) AS attempts, coalesce(sum(input_tokens), 0) AS "inputTokens", coalesce(sum(output_tokens), 0) AS "outputTokens",
  coalesce(sum(cache_read_tokens), 0) AS "cacheReadTokens", coalesce(sum(cache_write_tokens), 0) AS "cacheWriteTokens",
  coalesce(sum(reasoning_tokens), 0) AS "reasoningTokens",
  coalesce(sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) AS tokens,
  coalesce(sum(cost_usd), 0) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced`;

const GROUP_KEYS: Record<CostGroup, string> = {
  persona: "persona_id",
  goal: "root_id::text",
  model: "coalesce(model, '(unknown)')",
  agent: "coalesce(agent_id, '(none)')",
  provider: "provider",
  day: "to_char(to_timestamp(at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
};

export async function cost(q: Q, by: CostGroup, since: number, rootId: number | null): Promise<CostRow[]> {
  const key = GROUP_KEYS[by];
  if (key === undefined) throw new RosterError("VALIDATION", `by: must be one of ${Object.keys(GROUP_KEYS).join(", ")}`, { details: { field: "by" } });
  const rows = await q.rows<CostRow>(
    `SELECT ${key} AS key, ${AGGREGATES} FROM usage WHERE at >= $1 AND ($2::bigint IS NULL OR root_id = $2)
     GROUP BY 1 ORDER BY cost_usd DESC, tokens DESC, key`,
    [since, rootId],
  );
  return rows.map(costRow);
}

export async function total(q: Q, since: number, rootId: number | null): Promise<CostRow> {
  const row = await q.one<CostRow>(`SELECT 'total' AS key, ${AGGREGATES} FROM usage WHERE at >= $1 AND ($2::bigint IS NULL OR root_id = $2)`, [since, rootId]);
  return costRow(row!);
}

export async function usageOf(q: Q, taskId: number): Promise<UsageRecord[]> {
  return (await q.rows<UsageRow>("SELECT * FROM usage WHERE task_id = $1 ORDER BY attempt, id", [taskId])).map(toUsageRecord);
}
