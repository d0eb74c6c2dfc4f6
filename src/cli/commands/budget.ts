import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { RosterError } from "../../errors.js";
import { BUDGET_WINDOWS, type BudgetRecord, type BudgetScope, type BudgetWindow } from "../../store/index.js";
import { table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseInteger, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";
import { formatTokens, formatUsd } from "./cost.js";

interface TargetOptions extends DbOptions, JsonOptions {
  task?: string;
  goal?: string;
  persona?: string;
  global?: boolean;
}

interface LimitOptions extends TargetOptions {
  usd?: string;
  tokens?: string;
  per?: string;
}

/** Who the audit events name for changes made from the command line. */
const BY = "cli";

/** Exactly one of --task, --goal, --persona, --global: the budget's scope and key. */
function targetOf(options: TargetOptions): { scope: BudgetScope; key: string } {
  const given = (["task", "goal", "persona", "global"] as const).filter((flag) => options[flag] !== undefined && options[flag] !== false);
  if (given.length !== 1) {
    throw new RosterError("VALIDATION", `--task, --goal, --persona, --global: name exactly one budget, got ${given.length === 0 ? "none" : given.map((g) => `--${g}`).join(" and ")}`, {
      details: { field: "--task" },
    });
  }
  const scope = given[0]!;
  if (scope === "global") return { scope, key: "" };
  if (scope === "persona") return { scope, key: options.persona! };
  return { scope, key: String(parseTaskId(options[scope]!, `--${scope}`)) };
}

/** A non-negative amount of US dollars (`5`, `0.25`). */
function parseUsd(flag: string, raw: string): number {
  const text = raw.trim().replace(/^\$/, "");
  const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(value)) throw new RosterError("VALIDATION", `${flag}: must be a non-negative amount of US dollars such as 5 or 0.25, got "${raw}"`, { details: { field: flag } });
  return value;
}

function limitsOf(options: LimitOptions, verb: "set" | "raise"): { usd?: number; tokens?: number } {
  const out: { usd?: number; tokens?: number } = {};
  if (options.usd !== undefined) out.usd = parseUsd("--usd", options.usd);
  if (options.tokens !== undefined) out.tokens = parseInteger("--tokens", options.tokens, { min: 0 });
  if (out.usd === undefined && out.tokens === undefined) {
    throw new RosterError("VALIDATION", `--usd, --tokens: ${verb === "set" ? "a budget needs a limit" : "a raise needs an amount"}: give --usd, --tokens or both`, { details: { field: "--usd" } });
  }
  return out;
}

function windowOf(options: LimitOptions, scope: BudgetScope): BudgetWindow | undefined {
  if (options.per === undefined) return undefined;
  if (!(options.per in BUDGET_WINDOWS)) {
    throw new RosterError("VALIDATION", `--per: must be one of ${Object.keys(BUDGET_WINDOWS).join(", ")}, got "${options.per}"`, { details: { field: "--per" } });
  }
  if ((scope === "task" || scope === "goal") && options.per !== "total") {
    throw new RosterError("VALIDATION", `--per: a ${scope} budget is for the ${scope}'s whole life; --per hour|day is for --persona and --global`, { details: { field: "--per" } });
  }
  return options.per as BudgetWindow;
}

function name(b: { scope: BudgetScope; key: string }): string {
  return b.scope === "global" ? "global" : `${b.scope} ${b.key}`;
}

function describe(b: BudgetRecord): string {
  const limits = [b.maxCostUsd === null ? null : `${formatUsd(b.spentUsd)} of ${formatUsd(b.maxCostUsd)}`, b.maxTokens === null ? null : `${formatTokens(b.spentTokens)} of ${formatTokens(b.maxTokens)} tokens`];
  return `${name(b)}${b.window === "total" ? "" : ` per ${b.window}`}: ${limits.filter((l) => l !== null).join(", ")}${b.exhausted ? " (exhausted: its claims are held)" : ""}`;
}

function withTarget(command: Command): Command {
  return command
    .option("--task <id>", "a task's own budget (replaces its policy.maxCostUsd / maxTokens)")
    .option("--goal <id>", "a goal's budget: the root task and its whole subtree")
    .option("--persona <id>", "a persona's budget, per --per window")
    .option("--global", "the budget of everything, per --per window");
}

/**
 * `roster budget set|raise|rm|ls`: budgets the claim enforces (docs/economics.md).
 * Each change writes an audit event (budget:set, budget:raised, budget:removed;
 * on the task's trail for task and goal budgets) and wakes the supervisors.
 */
export function register(program: Command): void {
  const budget = program.command("budget").description("set, raise, remove and list the spending limits the claim enforces");

  const set = withTarget(budget.command("set").description("set a budget (replaces its limits): --usd and/or --tokens"))
    .option("--usd <dollars>", "the most US dollars it may spend")
    .option("--tokens <n>", "the most tokens it may spend")
    .option("--per <window>", "hour, day or total (default: day for --persona and --global, total for --task and --goal)");
  addDbOption(set);
  addJsonOption(set);
  set.action(async (options: LimitOptions) => {
    const target = targetOf(options);
    const limits = limitsOf(options, "set");
    const window = windowOf(options, target.scope);
    const record = await withStore(configFrom(options), "existing", (store) =>
      store.economics.setBudget({ ...target, ...(window === undefined ? {} : { window }), maxCostUsd: limits.usd ?? null, maxTokens: limits.tokens ?? null, now: systemClock.now(), by: BY }),
    );
    if (options.json) printJson(record);
    else write(`budget set: ${describe(record)}`);
  });

  const raise = withTarget(budget.command("raise").description("raise a budget's limits by --usd and/or --tokens (lifts its hold when it is no longer spent)"))
    .option("--usd <dollars>", "US dollars to add")
    .option("--tokens <n>", "tokens to add");
  addDbOption(raise);
  addJsonOption(raise);
  raise.action(async (options: LimitOptions) => {
    const target = targetOf(options);
    const limits = limitsOf(options, "raise");
    const record = await withStore(configFrom(options), "existing", (store) =>
      store.economics.raiseBudget({
        ...target,
        ...(limits.usd === undefined ? {} : { addCostUsd: limits.usd }),
        ...(limits.tokens === undefined ? {} : { addTokens: limits.tokens }),
        now: systemClock.now(),
        by: BY,
      }),
    );
    if (options.json) printJson(record);
    else write(`budget raised: ${describe(record)}`);
  });

  const rm = withTarget(budget.command("rm").description("remove a set budget (a task's own policy limits stay)"));
  addDbOption(rm);
  addJsonOption(rm);
  rm.action(async (options: TargetOptions) => {
    const target = targetOf(options);
    const removed = await withStore(configFrom(options), "existing", (store) => store.economics.removeBudget({ ...target, now: systemClock.now(), by: BY }));
    if (!removed) throw new RosterError("INVALID_STATE", `${name(target)}: has no budget to remove (\`roster budget ls\` lists them)`, { details: { field: `--${target.scope}` } });
    if (options.json) printJson({ ...target, removed });
    else write(`budget removed: ${name(target)}`);
  });

  const ls = budget.command("ls").description("list budgets with what they spent in their current window");
  addDbOption(ls);
  addJsonOption(ls);
  ls.action(async (options: DbOptions & JsonOptions) => {
    const budgets = await withStore(configFrom(options), "existing", (store) => store.economics.budgets({ now: systemClock.now() }));
    if (options.json) {
      printJson(budgets);
      return;
    }
    if (budgets.length === 0) {
      write("no budgets");
      return;
    }
    write(
      table(
        ["SCOPE", "KEY", "PER", "SPENT USD", "MAX USD", "SPENT TOKENS", "MAX TOKENS", "STATE"],
        budgets.map((b) => [
          b.scope,
          b.key === "" ? "-" : b.key,
          b.window,
          formatUsd(b.spentUsd),
          b.maxCostUsd === null ? "-" : formatUsd(b.maxCostUsd),
          formatTokens(b.spentTokens),
          b.maxTokens === null ? "-" : formatTokens(b.maxTokens),
          `${b.exhausted ? "exhausted" : "ok"}${b.source === "policy" ? " (task policy)" : ""}`,
        ]),
      ).trimEnd(),
    );
  });
}
