/**
 * `npm run chaos -- [--kills N] [--seed S] [--tasks N] [--record] [--keep]`: the
 * crash suite of issue 7 (bench/chaos/run.ts). Prints the seed first, so a failing
 * run can be replayed with --seed; exits 1 when any check fails. --record writes
 * the figures into bench/RESULTS.md's `## chaos` section.
 */
import { cpus } from "node:os";
import { join } from "node:path";
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
}

function usage(message: string): never {
  process.stderr.write(`chaos: ${message}\nusage: npm run chaos -- [--kills N] [--seed S] [--tasks N] [--lease-ms MS] [--record] [--keep]\n`);
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
  return `npm run chaos -- --kills ${args.kills} --seed ${args.seed} --tasks ${args.tasks}${args.leaseMs === undefined ? "" : ` --lease-ms ${args.leaseMs}`}`;
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

function resultsSection(args: Args, report: ChaosReport): string {
  const env = environment(["better-sqlite3", "piscina"]);
  const f = report.figures;
  const o = report.options;
  return [
    "_Crash suite (issues 7 and 12): mixed tasks with dependencies (echo, sleep, flaky, fail, the demo planner, a shell script), supervisors killed with SIGKILL at seeded random moments and restarted; 30% of cycles add one fault (SIGSTOP past the leases, cancel + retry of running tasks, a hung adapter beside innocents, a held write lock across due times, a full disk, kill -9 of shell leaders with grandchildren, a skewed clock); then one `roster start --exit-when-idle`; checks from the database, its `task_events` and the run's history._",
    "",
    `Command: \`${commandLine(args)}\` · ${new Date(Date.now() - report.wallMs).toISOString().slice(0, 16).replace("T", " ")} UTC · took ${(report.wallMs / 1000).toFixed(1)} s · ${report.ok ? "**passed**" : "**FAILED**"}`,
    "",
    `- Machine: ${env.cpu}, ${cpus().length} cores, ${env.memoryGb} GB RAM, ${env.os}`,
    `- Versions: Node ${env.node}, SQLite ${env.sqlite}, better-sqlite3 ${env.packages["better-sqlite3"] ?? "?"}, piscina ${env.packages.piscina ?? "?"}, roster ${env.roster}`,
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
    "Checks: a task whose adapter cannot fail (echo, sleep, shell, tree, planner) ends completed unless the harness took every attempt; no task waits ready past 2 × pollIntervalMs + 1 s beside a live, unpaused supervisor with a free slot (bench/chaos/stalls.ts); grandchildren die with a killed leader; every task terminal as its policy says (completed; failed when its adapter fails for good or every attempt's lease expired; blocked only behind a failed dependency); no task with two `task:completed`; every `task:claimed` followed by exactly one outcome, release or lease expiry before the next claim; `attempts <= maxAttempts`; no claim before its dependencies completed; a completed task's result from its completing attempt; a planner's children written once; `task_counts` and every `unmet_deps` match a recount; `PRAGMA integrity_check` = ok. Replay: the same command with the same `--seed`.",
  ].join("\n");
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  process.stdout.write(`chaos: seed ${args.seed} (replay: ${commandLine(args)})\n`);
  const report = await runChaos({
    kills: args.kills,
    seed: args.seed,
    tasks: args.tasks,
    keep: args.keep,
    ...(args.leaseMs === undefined ? {} : { leaseMs: args.leaseMs }),
    log: (line) => process.stdout.write(`chaos: ${line}\n`),
  });
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
    writeResultsSection(file, "chaos", resultsSection(args, report));
    process.stdout.write(`recorded in ${file}\n`);
  }
  process.exitCode = report.ok ? 0 : 1;
}

await main();
