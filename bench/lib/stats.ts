/** Small statistics for benchmark runs: every figure is a median of several runs with its range. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error("summarize: no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: sorted.length };
}

/** 12345.6 → "12,346"; small numbers keep one decimal. */
export function formatNumber(value: number): string {
  const digits = Math.abs(value) < 100 ? 1 : 0;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "12,346 (11,900–12,700)" */
export function formatSummary(summary: Summary): string {
  return `${formatNumber(summary.median)} (${formatNumber(summary.min)}–${formatNumber(summary.max)})`;
}

/** 10_000 → "10k", 1_000_000 → "1M". */
export function formatCount(n: number): string {
  if (n >= 1_000_000 && n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n >= 1_000 && n % 1_000 === 0) return `${n / 1_000}k`;
  return String(n);
}

/** A markdown table; the first row is the header. */
export function markdownTable(rows: readonly string[][], align: Array<"l" | "r"> = []): string {
  const [head, ...body] = rows;
  if (head === undefined) return "";
  const rule = head.map((_, i) => (align[i] === "r" ? "---:" : "---"));
  return [head, rule, ...body].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** A fixed-width text table for the terminal. */
export function textTable(rows: readonly string[][], align: Array<"l" | "r"> = []): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((cells) => cells.map((c, i) => (align[i] === "r" ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ")).join("\n");
}
