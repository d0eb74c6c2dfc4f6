/**
 * `npm run chaos -- [--kills N] [--seed S] [--tasks N] [--db postgres|postgres://…] [--record] [--keep]`:
 * the crash suite of issue 7 (bench/chaos/run.ts). Prints the seed first, so a
 * failing run can be replayed with --seed; exits 1 when any check fails. --record
 * writes the figures into bench/RESULTS.md's `## chaos` section, under the
 * database's own heading (SQLite, PostgreSQL), keeping the other's.
 *
 * --db (issue 19): the run uses PostgreSQL instead of a SQLite file. `postgres`
 * starts a private cluster for the run (bench/lib/postgres.ts: initdb into a
 * temp folder, from the Debian packages); a postgres:// URL names a server on which
 * the run creates a fresh database (the role needs CREATEDB), dropped after a run
 * that passed unless --keep.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { redactUrl } from "../src/store/postgres/connection.js";
import { startPrivateCluster, type PostgresServer } from "./lib/postgres.js";
import { environment } from "./lib/machine.js";
import { repoRoot } from "./lib/paths.js";
import { writeResultsSection } from "./lib/results.js";
import { runChaos, STALL_WARNING, type ChaosReport } from "./chaos/run.js";
import { newSeed } from "./chaos/random.js";

const KILLS_DEFAULT = 50;
/** Tasks per kill when --tasks is not given (at least 60): enough that work is running at most kills. */
const TASKS_PER_KILL = 5;

interface Args {
  kills: number;
  seed: number;
  tasks: number;
  record: boolean;
  keep: boolean;
  leaseMs?: number;
  /** "postgres" (a private cluster) or a postgres:// URL; absent: SQLite. */
  db?: string;
}

function usage(message: string): never {
  process.stderr.write(`chaos: ${message}\nusage: npm run chaos -- [--kills N] [--seed S] [--tasks N] [--lease-ms MS] [--db postgres|postgres://…] [--record] [--keep]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { kills: KILLS_DEFAULT, seed: newSeed(), tasks: 0, record: false, keep: false };
  const int = (flag: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (value === undefined || !/^\d+$/.test(value)) usage(`${flag}: must be an integer, got ${JSON.stringify(value ?? null)}`);
    const n = Number(value);
    if (n < min || n > max) usage(`${flag}: must be from ${min} to ${max}, got ${n}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    switch (flag) {
      case "--kills":
        args.kills = int(flag, argv[++i], 0);
        break;
      case "--seed":
        args.seed = int(flag, argv[++i], 0, 0xffff_ffff);
        break;
      case "--tasks":
        args.tasks = int(flag, argv[++i], 1);
        break;
      case "--lease-ms":
        args.leaseMs = int(flag, argv[++i], 100);
        break;
      case "--db": {
        const value = argv[++i];
        if (value === undefined || !(value === "postgres" || /^postgres(ql)?:\/\//.test(value))) {
          usage(`--db: must be "postgres" (a private cluster) or a postgres:// URL, got ${JSON.stringify(value === undefined ? null : redactUrl(value))}`);
        }
        args.db = value;
        break;
      }
      case "--record":
        args.record = true;
        break;
      case "--keep":
        args.keep = true;
        break;
      default:
        usage(`unknown option ${JSON.stringify(flag)}`);
    }
  }
  if (args.tasks === 0) args.tasks = Math.max(60, args.kills * TASKS_PER_KILL);
  return args;
}

function commandLine(args: Args): string {
  const db = args.db === undefined ? "" : ` --db ${args.db === "postgres" ? "postgres" : redactUrl(args.db)}`;
  return `npm run chaos -- --kills ${args.kills} --seed ${args.seed} --tasks ${args.tasks}${args.leaseMs === undefined ? "" : ` --lease-ms ${args.leaseMs}`}${db}`;
}

function figureLines(report: ChaosReport): string[] {
  const f = report.figures;
  const statuses = Object.entries(f.byStatus)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([s, n]) => `${s} ${n}`)
    .join(", ");
  return [
    `seed: ${report.seed}`,
    `kills survived: ${report.kills} (SIGKILL; ${report.killsBeforeReady} before the supervisor was ready; ${report.terms - report.gracefulStops} during a graceful shutdown after SIGTERM; ${report.overlapKills} of a companion supervisor running beside another; ${report.gracefulStops} SIGTERMs stopped it cleanly first)`,
    `tasks: ${f.tasks} (${statuses})`,
    `claims: ${f.claims}; lease expiries collected: ${f.leaseExpiries}; releases: ${f.releases}; shell script runs: ${f.shellExecutions} (${f.orphanShellRuns} by attempts whose lease expired)`,
    `duplicates found: ${f.duplicates}`,
    `lost tasks: ${f.lost}`,
    `faults (issue 12): ${Object.entries(report.faults).map(([k, n]) => `${k} ${n}`).join(", ") || "none"}; full disk: ${report.diskMode}`,
    `wrongly failed: ${f.wronglyFailed.length}`,
    ...f.wronglyFailed.slice(0, 30).map((w) => `  - ${w}`),
    `stalls: ${f.stalls.length} (supervisors' "${STALL_WARNING}" log lines: ${report.history.stallWarnings})`,
    `orphan grandchildren: ${f.orphanGrandchildren}; attempts lost to the harness: ${f.harnessLostAttempts}; leases collected early by the true clock: ${f.earlyReaps}`,
    `policy/protocol violations: ${f.violations.length}`,
    `final roster start --exit-when-idle: ${report.drained ? "exited 0" : `did not finish cleanly (exit ${report.drainExitCode})`}`,
    `wall time: ${(report.wallMs / 1000).toFixed(1)} s`,
  ];
}

function resultsSection(args: Args, report: ChaosReport, serverVersion: string | null): string {
  const env = environment(["better-sqlite3", "piscina", "pg"]);
  const f = report.figures;
  const o = report.options;
  const postgres = report.engine === "postgres";
  const lock = postgres ? "a held `LOCK TABLE task_status IN EXCLUSIVE MODE` across due times" : "a held write lock across due times, a full disk";
  return [
    `_Crash suite (issues 7 and 12${postgres ? ", on PostgreSQL for issue 19" : ""}): mixed tasks with dependencies (echo, sleep, flaky, fail, the demo planner, a shell script), supervisors killed with SIGKILL at seeded random moments and restarted; 30% of cycles add one fault (SIGSTOP past the leases, cancel + retry of running tasks, a hung adapter beside innocents, ${lock}, kill -9 of shell leaders with grandchildren, a skewed clock); then one \`roster start --exit-when-idle\`; checks from the database, its \`task_events\` and the run's history._`,
    "",
    `Command: \`${commandLine(args)}\` · ${new Date(Date.now() - report.wallMs).toISOString().slice(0, 16).replace("T", " ")} UTC · took ${(report.wallMs / 1000).toFixed(1)} s · ${report.ok ? "**passed**" : "**FAILED**"}`,
    "",
    `- Machine: ${env.cpu}, ${cpus().length} cores, ${env.memoryGb} GB RAM, ${env.os}`,
    postgres
      ? `- Versions: Node ${env.node}, PostgreSQL ${serverVersion ?? "?"} (${args.db === "postgres" ? "a private cluster started by the run: fsync off, synchronous_commit off" : "the server named by --db"}), pg ${env.packages.pg ?? "?"}, piscina ${env.packages.piscina ?? "?"}, roster ${env.roster}`
      : `- Versions: Node ${env.node}, SQLite ${env.sqlite}, better-sqlite3 ${env.packages["better-sqlite3"] ?? "?"}, piscina ${env.packages.piscina ?? "?"}, roster ${env.roster}`,
    `- Load: 1-minute load average ${report.loadAverage.before.toFixed(2)} before, ${report.loadAverage.after.toFixed(2)} after (the machine is shared; a loaded machine makes supervisors slower, leases tighter and kills land in more running work)`,
    `- Settings: leaseMs ${o.leaseMs}, chaos supervisors' reapIntervalMs ${o.reapIntervalMs}, killed up to ${o.maxRunMs} ms after ready (15% at 0–700 ms after spawn), every ${o.binaryEvery}th one the real \`roster start\` binary; 20% of cycles start a companion supervisor beside the main one (two on the database at once)`,
    "",
    "| figure | value |",
    "| --- | --- |",
    `| seed | ${report.seed} |`,
    `| kills survived | ${report.kills} (${report.killsBeforeReady} before the supervisor was ready, ${report.terms - report.gracefulStops} during a graceful shutdown after SIGTERM, ${report.overlapKills} of a companion supervisor running beside another) |`,
    `| graceful stops (SIGTERM finished before the kill) | ${report.gracefulStops} |`,
    `| tasks | ${f.tasks} (${Object.entries(f.byStatus).sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s} ${n}`).join(", ")}) |`,
    `| claims | ${f.claims} |`,
    `| lease expiries collected | ${f.leaseExpiries} |`,
    `| shell script runs (at least once per completed shell task) | ${f.shellExecutions} |`,
    `| of those, runs that finished although their attempt's lease expired (orphans of a killed supervisor, or a run that ended just before the kill) | ${f.orphanShellRuns} |`,
    `| duplicates found | ${f.duplicates} |`,
    `| lost tasks | ${f.lost} |`,
    `| faults (issue 12) | ${Object.entries(report.faults).map(([k, n]) => `${k} ${n}`).join(", ") || "none"} |`,
    `| full disk made by | ${report.diskMode} |`,
    `| wrongly failed | ${f.wronglyFailed.length} |`,
    `| stalls | ${f.stalls.length} |`,
    `| orphan grandchildren | ${f.orphanGrandchildren} |`,
    `| policy / protocol violations | ${f.violations.length} |`,
    `| wall time | ${(report.wallMs / 1000).toFixed(1)} s |`,
    "",
    ...(report.failures.length === 0 ? [] : ["", "Problems found:", "", ...report.failures.slice(0, 60).map((x) => `- ${x.split("\n")[0]!.slice(0, 400)}`)]),
    "",
    "Checks: a task whose adapter cannot fail (echo, sleep, shell, tree, planner) ends completed unless the harness took every attempt; no task waits ready past 2 × pollIntervalMs + 1 s beside a live, unpaused supervisor with a free slot (bench/chaos/stalls.ts); grandchildren die with a killed leader; every task terminal as its policy says (completed; failed when its adapter fails for good or every attempt's lease expired; blocked only behind a failed dependency); no task with two `task:completed`; every `task:claimed` followed by exactly one outcome, release or lease expiry before the next claim; `attempts <= maxAttempts`; no claim before its dependencies completed; a completed task's result from its completing attempt; a planner's children written once;" +
      (postgres ? "every `unmet_deps` matches a recount; the store's integrity check (no leased row without a token, no task without a status row) = ok" : "`task_counts` and every `unmet_deps` match a recount; `PRAGMA integrity_check` = ok") +
      ". Replay: the same command with the same `--seed`.",
  ].join("\n");
}

const ENGINE_HEADINGS = { sqlite: "### SQLite", postgres: "### PostgreSQL" } as const;

/**
 * Writes the run into bench/RESULTS.md's `## chaos` section under its database's
 * heading and keeps the other database's run (a section written before there were
 * headings is SQLite's).
 */
function recordChaos(file: string, engine: ChaosReport["engine"], body: string): void {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.trimEnd() === "## chaos");
  let end = start === -1 ? -1 : lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end === -1) end = lines.length;
  const current = start === -1 ? "" : lines.slice(start + 1, end).join("\n").trim();
  const parts: Record<string, string> = {};
  if (current !== "") {
    const chunks = current.split(/^(?=### (?:SQLite|PostgreSQL)$)/m);
    for (const chunk of chunks) {
      const heading = Object.values(ENGINE_HEADINGS).find((h) => chunk.startsWith(`${h}\n`));
      if (heading === undefined) parts[ENGINE_HEADINGS.sqlite] = chunk.trim();
      else parts[heading] = chunk.slice(heading.length).trim();
    }
  }
  parts[ENGINE_HEADINGS[engine]] = body.trim();
  const section = Object.values(ENGINE_HEADINGS)
    .filter((h) => parts[h] !== undefined)
    .map((h) => `${h}\n\n${parts[h]}`)
    .join("\n\n");
  writeResultsSection(file, "chaos", section);
}

/** The database the run uses, when --db says PostgreSQL: its URL, its server's version, and how to let it go. */
async function postgresFor(args: Args): Promise<{ url: string; version: string; done(ok: boolean): Promise<void> }> {
  let cluster: PostgresServer | null = null;
  let adminUrl: string;
  if (args.db === "postgres") {
    cluster = await startPrivateCluster();
    adminUrl = cluster.adminUrl;
  } else {
    adminUrl = args.db!;
  }
  const name = `roster_chaos_${args.seed}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  let version: string;
  try {
    version = String((await admin.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version ?? "?");
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    version,
    done: async (ok) => {
      if (cluster !== null) {
        await cluster.stop(); // the cluster and its folder go whatever the outcome
        return;
      }
      if (!ok || args.keep) {
        process.stdout.write(`kept database ${name} on ${redactUrl(adminUrl)}\n`);
        return;
      }
      const drop = new pg.Client({ connectionString: adminUrl });
      await drop.connect();
      try {
        await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await drop.end();
      }
    },
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  process.stdout.write(`chaos: seed ${args.seed} (replay: ${commandLine(args)})\n`);
  const postgres = args.db === undefined ? null : await postgresFor(args);
  if (postgres !== null) process.stdout.write(`chaos: on PostgreSQL ${postgres.version}, database ${redactUrl(postgres.url)}\n`);
  let report: ChaosReport;
  try {
    report = await runChaos({
      kills: args.kills,
      seed: args.seed,
      tasks: args.tasks,
      keep: args.keep,
      ...(args.leaseMs === undefined ? {} : { leaseMs: args.leaseMs }),
      ...(postgres === null ? {} : { db: postgres.url }),
      log: (line) => process.stdout.write(`chaos: ${line}\n`),
    });
  } catch (error) {
    await postgres?.done(false);
    throw error;
  }
  await postgres?.done(report.ok);
  for (const line of figureLines(report)) process.stdout.write(`${line}\n`);
  if (!report.ok) {
    process.stdout.write(`\nFAILED: ${report.failures.length} problems (database and logs kept in ${report.dir}):\n`);
    for (const failure of report.failures.slice(0, 50)) process.stdout.write(`- ${failure}\n`);
    if (report.failures.length > 50) process.stdout.write(`… and ${report.failures.length - 50} more\n`);
  } else if (args.keep) {
    process.stdout.write(`kept: ${report.dir}\n`);
  }
  if (args.record) {
    const file = join(repoRoot(), "bench", "RESULTS.md");
    recordChaos(file, report.engine, resultsSection(args, report, postgres?.version ?? null));
    process.stdout.write(`recorded in ${file}\n`);
  }
  process.exitCode = report.ok ? 0 : 1;
}

await main();
