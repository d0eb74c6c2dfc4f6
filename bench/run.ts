/**
 * The benchmark harness: `npm run bench -- [scenario ...] [--quick] [--out DIR]`.
 *
 * Runs the named scenarios (all of them when none is named) one after another, each
 * measuring its systems in child processes and repeating its measures itself, then
 * writes bench/results.json and the scenarios' sections of bench/RESULTS.md (keeping
 * other scenarios' sections). `--quick` runs tiny sizes for CI and writes, unless
 * `--out` says otherwise, to bench/.work/quick/ so it never replaces real figures.
 * Exit code: 0 all scenarios ran, 1 a scenario failed (its section says why), 2 usage.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { SCENARIOS } from "./scenarios/index.js";
import { machineInfo } from "./scenarios/support/machine.js";
import { DIST_BENCH_DIR, ROOT_DIR } from "./scenarios/support/paths.js";
import { writeReports } from "./scenarios/support/report.js";
import type { ScenarioResult } from "./scenarios/support/types.js";

const USAGE = `usage: npm run bench -- [scenario ...] [--quick] [--out DIR]

scenarios (default: all, in this order):
${SCENARIOS.map((s) => `  ${s.name.padEnd(12)} ${s.description}`).join("\n")}

options:
  --quick     tiny sizes, one repetition: a smoke run (about a minute), written to bench/.work/quick/
  --out DIR   write results.json and RESULTS.md into DIR (default: bench/, or bench/.work/quick/ with --quick)
  --help      this text`;

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: { quick: { type: "boolean", default: false }, out: { type: "string" }, help: { type: "boolean", default: false } },
    });
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
  if (parsed.values.help) {
    process.stdout.write(USAGE + "\n");
    return;
  }
  const known = new Map(SCENARIOS.map((s) => [s.name, s]));
  const unknown = parsed.positionals.filter((p) => !known.has(p));
  if (unknown.length > 0) usageError(`unknown scenario ${unknown.map((u) => `"${u}"`).join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
  const chosen = parsed.positionals.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => parsed.positionals.includes(s.name));
  const quick = parsed.values.quick === true;
  const outDir = resolve(parsed.values.out ?? (quick ? join(ROOT_DIR, "bench", ".work", "quick") : join(ROOT_DIR, "bench")));
  const command = `npm run bench -- ${[...chosen.map((s) => s.name), ...(quick ? ["--quick"] : [])].join(" ")}`.trim();

  const workRoot = join(ROOT_DIR, "bench", ".work");
  mkdirSync(workRoot, { recursive: true });
  const machine = machineInfo();
  const results: ScenarioResult[] = [];
  let failed = false;
  const started = performance.now();
  for (const scenario of chosen) {
    const workDir = mkdtempSync(join(workRoot, `${scenario.name}-`));
    const log = (message: string) => process.stderr.write(`[bench ${scenario.name}] ${message}\n`);
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    log(quick ? "starting (quick)" : "starting");
    // The machine is shared: the load average around each scenario goes into its section.
    const loadBefore = loadavg()[0]!;
    try {
      const result = await scenario.run({ quick, workDir, rootDir: ROOT_DIR, distBenchDir: DIST_BENCH_DIR, log });
      result.params.loadAverage1m = { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0]!.toFixed(2)) };
      results.push(result);
      log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (error) {
      failed = true;
      const e = error instanceof Error ? error : new Error(String(error));
      log(`FAILED: ${e.stack ?? e.message}`);
      results.push({
        scenario: scenario.name,
        title: scenario.description,
        quick,
        startedAt,
        durationMs: performance.now() - t0,
        params: {},
        figures: { error: e.message },
        tables: [],
        targets: [],
        notes: [`**The scenario failed:** ${e.message}`],
        skipped: [],
      });
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }
  const written = writeReports({ outDir, results, command, machine });
  process.stderr.write(
    `[bench] ${results.length} scenario(s) in ${((performance.now() - started) / 1000).toFixed(1)} s; wrote ${written.markdown} and ${written.json}\n`,
  );
  process.exitCode = failed ? 1 : 0;
}

// Ctrl-C or SIGTERM: exit through process.exit so the exit hooks stop redis-server and the children.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

await main();
