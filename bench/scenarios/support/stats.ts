/**
 * Figures for the scenarios, on bench/lib/stats.ts's summarize (median, min, max, runs).
 * Added here, because bench/lib does not have them: the samples kept beside the summary
 * (for results.json), an empty list summarised as n/a (a system that never ran), a
 * nearest-rank quantile (latency p50/p99), and number and ratio formats.
 */
import { summarize as libSummarize } from "../../lib/stats.js";
import type { Summary } from "./types.js";

export function summarize(samples: number[]): Summary {
  if (samples.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, runs: 0, samples: [] };
  return { ...libSummarize(samples), samples: [...samples] };
}

/** The q-quantile (0..1) of samples, nearest-rank. */
export function quantile(samples: number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** A number with a sensible number of digits for a table. */
export function fmt(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return "n/a";
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3);
  return value.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** "12,345 (11,900–12,800)": median with min–max. */
export function fmtSummary(s: Summary, digits?: number): string {
  if (s.runs === 0) return "n/a";
  if (s.runs === 1) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** "1.52×" */
export function fmtRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "n/a";
}
