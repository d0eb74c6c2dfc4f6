import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { RosterError } from "../../errors.js";
import { COST_GROUPS, type CostGroup, type CostRow } from "../../store/index.js";
import { table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseDuration, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";

interface CostOptions extends DbOptions, JsonOptions {
  by?: string;
  since?: string;
  goal?: string;
}

/** US dollars as people read them: cents for a dollar and more, four places below. */
export function formatUsd(usd: number): string {
  return `$${usd.toFixed(usd >= 1 || usd === 0 ? 2 : 4)}`;
}

/** A token count with thousands separators (1,234,567). */
export function formatTokens(n: number): string {
  return n.toLocaleString("en-US");
}

/** One cost row as table cells: the key, then attempts, tokens by kind, total tokens, USD. */
function cells(row: CostRow): Array<string | number> {
  const usd = `${formatUsd(row.costUsd)}${row.unpriced > 0 ? ` (+${row.unpriced} unpriced)` : ""}`;
  return [
    row.key,
    row.attempts,
    formatTokens(row.inputTokens),
    formatTokens(row.outputTokens),
    formatTokens(row.cacheReadTokens),
    formatTokens(row.cacheWriteTokens),
    formatTokens(row.tokens),
    usd,
  ];
}

/** The report as text: one row per group, largest cost first, then the total. */
export function formatCost(by: CostGroup, rows: CostRow[], total: CostRow): string {
  if (rows.length === 0) return "no usage recorded";
  const headers = [by === "goal" ? "GOAL" : by.toUpperCase(), "ATTEMPTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "TOKENS", "USD"];
  return table(headers, [...rows.map(cells), cells({ ...total, key: "total" })], { whole: [7] }).trimEnd();
}

/**
 * `roster cost`: what attempts spent, grouped by persona (default), goal (root task),
 * model, agent, day (UTC) or provider; `--since 24h` for recent spend only,
 * `--goal ID` for one goal's. `--json` prints `{ by, since, goal, rows, total }`.
 */
export function register(program: Command): void {
  const command = program
    .command("cost")
    .description("show what attempts spent (tokens and USD) by persona, goal, model, agent, day or provider")
    .option("--by <group>", `group by one of ${COST_GROUPS.join(", ")} (default persona)`)
    .option("--since <duration>", "only usage recorded in this last stretch (24h, 7d, 30m)")
    .option("--goal <id>", "only the usage of one goal (a root task and its subtree)");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: CostOptions) => {
    const by = (options.by ?? "persona") as CostGroup;
    if (!(COST_GROUPS as readonly string[]).includes(by)) {
      throw new RosterError("VALIDATION", `--by: must be one of ${COST_GROUPS.join(", ")}, got "${options.by}"`, { details: { field: "--by" } });
    }
    const now = systemClock.now();
    const since = options.since === undefined ? 0 : now - parseDuration("--since", options.since);
    const rootId = options.goal === undefined ? undefined : parseTaskId(options.goal, "--goal");
    const config = configFrom(options);
    const { rows, total } = await withStore(config, "existing", async (store) => {
      if (rootId !== undefined) await store.tasks.get({ taskId: rootId, eventLimit: 0 }); // TASK_NOT_FOUND for a goal that is not there
      const scope = { since, ...(rootId === undefined ? {} : { rootId }) };
      return { rows: await store.economics.cost({ by, ...scope }), total: await store.economics.total(scope) };
    });
    if (options.json) {
      printJson({ by, since: since === 0 ? null : since, goal: rootId ?? null, rows, total });
      return;
    }
    write(formatCost(by, rows, total));
  });
}
