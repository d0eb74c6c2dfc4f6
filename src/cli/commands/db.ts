import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { loadConfig } from "../../config.js";
import { COPY_BATCH_ROWS_DEFAULT, COPY_BATCH_ROWS_MAX, copyDatabase, type CopyProgress, type CopySummary } from "../../store/index.js";
import { duration, table, write } from "../format.js";
import { printJson } from "../output.js";
import { addJsonOption, parseInteger, type JsonOptions } from "../options.js";

interface CopyFlags extends JsonOptions {
  from: string;
  to: string;
  batchSize?: string;
  allowRunning?: boolean;
}

/** At most one progress line per this many ms on stderr (besides each table's first and last). */
const PROGRESS_INTERVAL_MS = 1_000;

/**
 * `roster db copy --from roster.db --to postgres://…` (and back, `--from postgres://…
 * --to new.db`): moves a database with its history between the two stores (issue 19;
 * docs/postgres.md, "Moving a SQLite database to PostgreSQL"). Progress goes to stderr,
 * the summary to stdout (`--json`: one object). Every refusal writes nothing.
 */
export function register(program: Command): void {
  const db = program.command("db").description("database operations: copy a roster database between SQLite and PostgreSQL");
  const copy = db
    .command("copy")
    .description("copy a roster database with its history between SQLite and PostgreSQL, in one transaction on the target")
    .requiredOption("--from <db>", "the database to copy: a SQLite file or a postgres:// URL (read as one snapshot, never written)")
    .requiredOption("--to <db>", "where to copy it: a postgres:// URL (an empty or freshly initialised schema) or a SQLite file that does not exist yet")
    .option("--batch-size <rows>", `rows read and written at a time (1 to ${COPY_BATCH_ROWS_MAX}, default ${COPY_BATCH_ROWS_DEFAULT})`)
    .option("--allow-running", "copy even while a supervisor or worker looks alive on the source: a consistent snapshot, but what they do after it stays behind");
  addJsonOption(copy);
  copy.action(async (options: CopyFlags) => {
    const batchRows = options.batchSize === undefined ? undefined : parseInteger("--batch-size", options.batchSize, { min: 1, max: COPY_BATCH_ROWS_MAX });
    // Only the SQLite lock wait comes from the configuration (ROSTER_BUSY_TIMEOUT_MS); --from and --to are always given.
    const config = loadConfig({});
    const summary = await copyDatabase({
      from: options.from,
      to: options.to,
      now: systemClock.now(),
      batchRows,
      allowRunning: options.allowRunning === true,
      busyTimeoutMs: config.busyTimeoutMs,
      onProgress: progressPrinter(),
    });
    if (options.json) {
      printJson(summary);
      return;
    }
    printSummary(summary);
  });
}

/** Writes `db copy: tasks 40000/100000` lines to stderr: each table's start and end, and in between once a second. */
function progressPrinter(): (progress: CopyProgress) => void {
  let last = 0;
  return ({ table: name, copied, total }) => {
    const now = performance.now();
    const edge = copied === 0 || copied >= total;
    if (!edge && now - last < PROGRESS_INTERVAL_MS) return;
    if (copied === 0 && total > 0) return; // The first batch's line says it better.
    last = now;
    process.stderr.write(`db copy: ${name} ${copied}/${total}\n`);
  };
}

function printSummary(summary: CopySummary): void {
  write(`copied ${summary.from} to ${summary.to} in ${duration(summary.durationMs)}, in one transaction: ${summary.tasks} tasks with their history`);
  write(table(["table", "rows"], summary.tables.map((t) => [t.table, t.rows])).trimEnd());
  const lost = summary.notCopied.filter((t) => t.rows > 0);
  if (lost.length > 0) {
    write("not copied (the target has no place for them):");
    for (const t of lost) write(`  ${t.table}: ${t.rows} row(s): ${t.reason}`);
  }
  for (const c of summary.columnsNotCopied) write(`column not copied (the target's table lacks it): ${c.table}.${c.column}`);
  const next = Object.entries(summary.nextIds).flatMap(([name, columns]) => Object.entries(columns).map(([column, id]) => `${name}.${column} ${id}`));
  if (next.length > 0) write(`next ids on the target: ${next.join(", ")}`);
  if (summary.liveAgents.length > 0) {
    write(`--allow-running: ${summary.liveAgents.length} agent(s) looked alive on the source; what they did after the snapshot is not in the copy`);
  }
}
