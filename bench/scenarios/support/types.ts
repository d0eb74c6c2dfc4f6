/**
 * What a benchmark scenario is and what it hands back to the harness (bench/run.ts).
 * A scenario measures; the harness repeats nothing itself, it only parses arguments,
 * runs the chosen scenarios in order and writes bench/results.json and the scenario's
 * `## <name>` section of bench/RESULTS.md.
 */

import type { Summary as LibSummary } from "../../lib/stats.js";

/** A median with its spread over repetitions (bench/lib's Summary), and the samples themselves. */
export interface Summary extends LibSummary {
  samples: number[];
}

export interface Table {
  caption?: string;
  columns: string[];
  rows: string[][];
}

/** One target of issue 6, as measured in this run. */
export interface TargetCheck {
  name: string;
  /** The target, as written in the issue ("≥ 1.5× BullMQ"). */
  target: string;
  /** The measured value, formatted. */
  value: string;
  /** null when it could not be measured (the reason is in `notes` or `skipped`). */
  met: boolean | null;
}

export interface Skipped {
  what: string;
  reason: string;
}

export interface ScenarioResult {
  scenario: string;
  /** One line: what the scenario measures. */
  title: string;
  quick: boolean;
  startedAt: string;
  durationMs: number;
  /** Sizes, repetitions and settings used. */
  params: Record<string, unknown>;
  /** Machine-readable figures (Summary objects for repeated measures). */
  figures: Record<string, unknown>;
  tables: Table[];
  targets: TargetCheck[];
  notes: string[];
  skipped: Skipped[];
  /** A section body rendered by the benchmark itself (bench/store.ts); used instead of tables and notes. */
  markdown?: string;
}

export interface ScenarioContext {
  quick: boolean;
  /** Where scenarios may create temporary databases and files; removed by the scenario. */
  workDir: string;
  /** Repository root (package.json, migrations/, personas/). */
  rootDir: string;
  /** Built bench code (dist/bench). */
  distBenchDir: string;
  /** Progress lines on stderr; never part of the results. */
  log(message: string): void;
}

export interface Scenario {
  name: string;
  /** What it measures, for README and `--help`. */
  description: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
