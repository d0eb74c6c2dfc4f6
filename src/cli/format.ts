/**
 * Human-readable output: plain padded columns (no table library), times as ISO
 * strings. Scripts should use `--json` instead; these layouts may change.
 */
export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = rows.map((row) => row.map((cell) => oneLine(cell === null || cell === undefined ? "" : String(cell))));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => (row[i] ?? "").length)));
  const line = (row: string[]): string =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...cells.map(line)].join("\n") + "\n";
}

/** Collapses newlines and cuts long text so a row stays one line. */
export function oneLine(text: string, max = 80): string {
  const flat = text.replace(/\s*\n\s*/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function isoTime(epochMs: number | null | undefined): string {
  return epochMs === null || epochMs === undefined ? "" : new Date(epochMs).toISOString();
}

/** JSON for a one-line preview of a result or payload. */
export function preview(value: unknown, max = 60): string {
  if (value === null || value === undefined) return "";
  return oneLine(typeof value === "string" ? value : JSON.stringify(value), max);
}

export function write(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}
