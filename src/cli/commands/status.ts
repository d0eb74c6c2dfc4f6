import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { readStatus, renderStatus, statusJson, type StatusSnapshot } from "../../progress/index.js";
import type { Store } from "../../store/index.js";
import { localTime } from "../format.js";
import { printJson } from "../output.js";
import type { Config } from "../../config.js";
import { openStore } from "../../store/index.js";
import type { BreakerRecord, BudgetRecord, CostRow, ParkedTask, ProviderPause } from "../../store/index.js";
import { formatTokens, formatUsd } from "./cost.js";
import { addDbOption, addJsonOption, assertDatabaseThere, configFrom, parseInteger, type DbOptions, type JsonOptions } from "../options.js";

interface StatusOptions extends DbOptions, JsonOptions {
  watch?: boolean;
  interval?: string;
}

/** How often `--watch` redraws, in ms. */
export const STATUS_INTERVAL_MS_DEFAULT = 1_000;
export const STATUS_INTERVAL_MS_MIN = 100;
/**
 * A day. A longer redraw is a mistake (seconds or minutes typed as ms), and one past
 * TIMER_MS_MAX (src/timers.ts) redrew in a tight loop: refused, not capped, so the watch
 * never runs at an interval other than the one asked for.
 */
export const STATUS_INTERVAL_MS_MAX = 86_400_000;

/**
 * `roster status`: per persona, done / total with a bar and the count in each
 * state; then each running task with its progress fraction and message.
 * `--json` prints `{ at, counts: { persona: { state: n } }, personas, running, cost, gates, parked }`
 * (cost: all-time and today's totals; gates: paused providers, open breakers, spent budgets;
 * parked: tasks waiting for a person's approval or answer, which nothing else will move).
 * `--watch` redraws every `--interval` ms until Ctrl-C (in a terminal it
 * clears the screen; otherwise it prints one frame after another, and with
 * `--json` one JSON object per line).
 */
export function register(program: Command): void {
  const command = program
    .command("status")
    .description("show per persona how many tasks are done, and each running task's progress")
    .option("--watch", "redraw until Ctrl-C")
    .option("--interval <ms>", `with --watch, redraw every this many ms (default ${STATUS_INTERVAL_MS_DEFAULT}, at most ${STATUS_INTERVAL_MS_MAX})`);
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: StatusOptions) => {
    const intervalMs =
      options.interval === undefined ? STATUS_INTERVAL_MS_DEFAULT : parseInteger("--interval", options.interval, { min: STATUS_INTERVAL_MS_MIN, max: STATUS_INTERVAL_MS_MAX });
    const config = configFrom(options);
    const store = await openReadonly(config);
    try {
      if (options.watch === true) await watch(store, { json: options.json === true, intervalMs });
      else {
        const now = systemClock.now();
        print(await readStatus(store, { now }), await readSpend(store, now), await readParked(store), options.json === true);
      }
    } finally {
      await store.close();
    }
  });
}

/** Status only reads: a read-only connection, on a database that must be there (a mistyped --db never creates one). */
async function openReadonly(config: Config): Promise<Store> {
  assertDatabaseThere(config);
  return openStore({ path: config.dbPath, readonly: true, busyTimeoutMs: config.busyTimeoutMs });
}

function print(snapshot: StatusSnapshot, spend: SpendSnapshot, parked: ParkedSnapshot, json: boolean): void {
  if (json) printJson({ ...statusJson(snapshot), ...spend, ...parked });
  else process.stdout.write(`${[...renderStatus(snapshot), ...renderParked(parked), ...renderSpend(spend, snapshot.at)].join("\n")}\n`);
}

/** Tasks parked for a person (docs/humans-and-schedules.md): status's `parked`, the oldest first. */
export interface ParkedSnapshot {
  parked: Array<{
    id: number;
    persona: string;
    title: string;
    status: ParkedTask["status"];
    /** The question asked (awaiting_input), or the approval's text (title and description). */
    question: string | null;
    askedAt: number | null;
    /** awaiting_approval with a deadline: when, and what then happens by itself. */
    deadlineAt: number | null;
    default: "approve" | "reject" | null;
  }>;
  /** How many there are in all (parked lists at most PARKED_SHOWN_MAX). */
  parkedTotal: number;
}

/** Parked tasks listed at most; the rest are counted. */
export const PARKED_SHOWN_MAX = 50;

export async function readParked(store: Store): Promise<ParkedSnapshot> {
  const rows = await store.humans.listParked({ limit: PARKED_SHOWN_MAX + 1 });
  const parked = rows.slice(0, PARKED_SHOWN_MAX).map((t) => ({
    id: t.id,
    persona: t.persona,
    title: t.title,
    status: t.status,
    question: t.request?.question ?? null,
    askedAt: t.request?.askedAt ?? null,
    deadlineAt: t.request?.deadlineAt ?? null,
    default: t.request?.defaultOutcome ?? null,
  }));
  let parkedTotal = parked.length;
  if (rows.length > PARKED_SHOWN_MAX) {
    const counts = await store.tasks.counts();
    parkedTotal = Object.values(counts).reduce((sum, s) => sum + (s.awaiting_approval ?? 0) + (s.awaiting_input ?? 0), 0);
  }
  return { parked, parkedTotal };
}

/** Nothing when no task waits for a person; else a heading and one line per task, with the command that moves it. */
export function renderParked(snapshot: ParkedSnapshot): string[] {
  if (snapshot.parkedTotal === 0) return [];
  const lines = ["", `needs a person (${snapshot.parkedTotal}):`];
  for (const t of snapshot.parked) {
    const head = `  #${t.id} ${t.persona}`;
    if (t.status === "awaiting_input") {
      lines.push(`${head} asks: ${oneLine(t.question ?? t.title)}  (roster answer ${t.id} "…")`);
    } else {
      const deadline = t.deadlineAt === null || t.default === null ? "" : `, ${t.default === "approve" ? "approved" : "rejected"} by default at ${localTime(t.deadlineAt)}`;
      lines.push(`${head} awaits approval: ${oneLine(t.title)}${deadline}  (roster approve ${t.id} / roster reject ${t.id} --reason …)`);
    }
  }
  if (snapshot.parkedTotal > snapshot.parked.length) lines.push(`  … and ${snapshot.parkedTotal - snapshot.parked.length} more (roster answer lists the questions)`);
  return lines;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** What was spent (docs/economics.md) and the gates closed now: status's `cost` and `gates`. */
export interface SpendSnapshot {
  cost: { total: CostRow; today: CostRow };
  gates: { pauses: ProviderPause[]; breakers: BreakerRecord[]; budgetsExhausted: BudgetRecord[] };
}

const DAY_MS = 86_400_000;

export async function readSpend(store: Store, now: number): Promise<SpendSnapshot> {
  const total = await store.economics.total();
  const today = await store.economics.total({ since: Math.floor(now / DAY_MS) * DAY_MS });
  const pauses = await store.economics.pauses({ now });
  const breakers = (await store.economics.breakers()).filter((b) => b.state !== "closed");
  const budgetsExhausted = (await store.economics.budgets({ now })).filter((b) => b.exhausted);
  return { cost: { total, today }, gates: { pauses, breakers, budgetsExhausted } };
}

/** Two lines at most when nothing is gated: the spend, then one line per closed gate. */
export function renderSpend(spend: SpendSnapshot, now: number): string[] {
  const { total, today } = spend.cost;
  if (total.attempts === 0 && spend.gates.pauses.length + spend.gates.breakers.length + spend.gates.budgetsExhausted.length === 0) return [];
  const unpriced = total.unpriced > 0 ? `, ${total.unpriced} unpriced` : "";
  const lines = [
    "",
    `spent ${formatUsd(total.costUsd)} (${formatTokens(total.tokens)} tokens, ${total.attempts} attempts${unpriced}); today (UTC) ${formatUsd(today.costUsd)} (${formatTokens(today.tokens)} tokens)`,
  ];
  for (const p of spend.gates.pauses) lines.push(`  provider ${p.provider} paused (${p.reason}) ${p.until === null ? "until resumed (roster provider resume)" : `until ${localTime(p.until)}`}`);
  for (const b of spend.gates.breakers) {
    lines.push(`  breaker ${b.persona} ${b.state}${b.state === "open" && b.openUntil !== null && b.openUntil > now ? ` until ${localTime(b.openUntil)}` : ""} after ${b.consecutiveFailures} failures`);
  }
  for (const b of spend.gates.budgetsExhausted) lines.push(`  budget ${b.scope === "global" ? "global" : `${b.scope} ${b.key}`} exhausted (${formatUsd(b.spentUsd)}, ${formatTokens(b.spentTokens)} tokens)`);
  return lines;
}

/** Frames until SIGINT/SIGTERM; resolves (exit 0) when told to stop. */
async function watch(store: Store, options: { json: boolean; intervalMs: number }): Promise<void> {
  const out = process.stdout;
  const terminal = out.isTTY === true && !options.json;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  let stopping = false;
  const onSignal = () => {
    stopping = true;
    stop();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    let first = true;
    while (!stopping) {
      const snapshot = await readStatus(store, { now: systemClock.now() });
      const spend = await readSpend(store, snapshot.at);
      const parked = await readParked(store);
      if (options.json) {
        out.write(`${JSON.stringify({ ...statusJson(snapshot), ...spend, ...parked })}\n`);
      } else if (terminal) {
        const columns = out.columns !== undefined && out.columns > 0 ? out.columns : 80;
        const header = `roster status  ${new Date(snapshot.at).toLocaleTimeString()}  (every ${options.intervalMs} ms; Ctrl-C to stop)`;
        const lines = [header, "", ...renderStatus(snapshot, { maxWidth: Math.max(20, columns - 1) }), ...renderParked(parked), ...renderSpend(spend, snapshot.at)];
        // (Clear the screen once,) home, draw, clear whatever the previous frame left below.
        out.write(`${first ? "\x1b[2J" : ""}\x1b[H${lines.map((line) => `${line}\x1b[K`).join("\n")}\n\x1b[J`);
      } else {
        out.write(`${first ? "" : "\n"}${localTime(snapshot.at)}\n${[...renderStatus(snapshot), ...renderParked(parked), ...renderSpend(spend, snapshot.at)].join("\n")}\n`);
      }
      first = false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.intervalMs)))]);
      clearTimeout(timer);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
