/**
 * Human-readable output: plain padded columns (no table library), times in the
 * local time zone and durations ("in 4s"), never epoch ms. Scripts should use
 * `--json` instead (epoch ms there); these layouts may change.
 */
import { duration } from "../progress/summary.js";

export { duration };

export interface TableOptions {
  /** Columns (by index) printed whole instead of cut to one short line; the last column is the usual choice. */
  whole?: number[];
}

export function table(headers: string[], rows: Array<Array<string | number | null | undefined>>, options: TableOptions = {}): string {
  const whole = new Set(options.whole ?? []);
  const cells = rows.map((row) =>
    row.map((cell, i) => {
      const text = cell === null || cell === undefined ? "" : String(cell);
      return whole.has(i) ? text.replace(/\s*\n\s*/g, " ") : oneLine(text);
    }),
  );
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

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/** `2026-12-06 19:41:33.123` in the local time zone (empty for null). */
export function localTime(epochMs: number | null | undefined): string {
  if (epochMs === null || epochMs === undefined) return "";
  const d = new Date(epochMs);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A task's state for people: a pending task whose run_at is still ahead reads `pending, due in 4s`. */
export function statusText(task: { status: string; runAt: number | null }, now: number): string {
  if (task.status === "pending" && task.runAt !== null && task.runAt > now) return `pending, due in ${duration(task.runAt - now)}`;
  return task.status;
}

/**
 * A held lease for people. `leaseExpiresAt` is a renewal stamp, not a deadline (docs/ARCHITECTURE.md,
 * "Liveness"): the holder's last renewal plus the lease, on the holder's clock. So it reads as when
 * the lease was last renewed and how long a silence gets it reaped: `last renewed 2026-… 12:00:03,
 * reaped after 30s without a renewal`. Empty when the task holds no lease.
 */
export function leaseText(task: { leaseExpiresAt: number | null; leaseMs: number | null }): string {
  if (task.leaseExpiresAt === null) return "";
  if (task.leaseMs === null) return `lease stamp ${localTime(task.leaseExpiresAt)}`;
  return `last renewed ${localTime(task.leaseExpiresAt - task.leaseMs)}, reaped after ${duration(task.leaseMs)} without a renewal`;
}

/** An event's data as one line of JSON, whole, with its epoch-ms times (`runAt`, `leaseExpiresAt` …) shown as local times. */
export function eventData(data: unknown): string {
  if (data === null || data === undefined) return "";
  return JSON.stringify(data, (key, value: unknown) => (/At$/.test(key) && typeof value === "number" ? localTime(value) : value));
}

/** JSON for a one-line preview of a result or payload. */
export function preview(value: unknown, max = 60): string {
  if (value === null || value === undefined) return "";
  return oneLine(typeof value === "string" ? value : JSON.stringify(value), max);
}

export function write(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}
