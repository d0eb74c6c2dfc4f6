import type Database from "better-sqlite3";
import type { Db } from "./database.js";

/** Rows per statement of positional VALUES; a longer list goes in chunks of this many, then the rest. */
export const EVENT_ROWS_PER_STATEMENT = 64;

/**
 * Statements of one shape prepared once per row count (1 … EVENT_ROWS_PER_STATEMENT), for
 * rows bound as positional VALUES: the batch's task_events rows, the batched completion.
 */
export class ByRowCount<S> {
  private readonly byCount = new Map<number, S>();

  constructor(private readonly make: (count: number) => S) {}

  of(count: number): S {
    let stmt = this.byCount.get(count);
    if (stmt === undefined) this.byCount.set(count, (stmt = this.make(count)));
    return stmt;
  }
}

/** `count` rows of `width` placeholders each, for a VALUES list: `(?, ?), (?, ?)`. */
export function placeholders(count: number, width: number): string {
  const row = `(${Array<string>(width).fill("?").join(", ")})`;
  return Array<string>(count).fill(row).join(", ");
}

/**
 * Hands each chunk of at most EVENT_ROWS_PER_STATEMENT rows to `each` as one flat list of
 * values, `leading` first (a statement's own parameters before its VALUES). Copied by hand:
 * Array.prototype.flat took about 0.5 us a row here, 40 times this loop (issue 14).
 */
export function forEachChunk(rows: ReadonlyArray<readonly unknown[]>, leading: readonly unknown[], each: (count: number, values: unknown[]) => void): void {
  for (let start = 0; start < rows.length; start += EVENT_ROWS_PER_STATEMENT) {
    const end = Math.min(rows.length, start + EVENT_ROWS_PER_STATEMENT);
    const width = rows[start]!.length;
    const values: unknown[] = new Array(leading.length + (end - start) * width);
    let v = 0;
    for (const value of leading) values[v++] = value;
    for (let i = start; i < end; i++) {
      const row = rows[i]!;
      for (let c = 0; c < width; c++) values[v++] = row[c];
    }
    each(end - start, values);
  }
}

/** One task_events row: task id, type, time, agent, attempt, data (JSON text, or null). */
export type EventRow = readonly [taskId: number, type: string, at: number, agentId: string | null, attempt: number | null, data: string | null];

/**
 * The task_events rows of a batch (claims, completions: docs/ARCHITECTURE.md rule 9) in
 * one INSERT of positional VALUES per chunk, each statement prepared once per row count.
 * These rows went in through json_each with `value ->> i` per column, which parses every
 * row's JSON text once per column, and json_object per row: under cachegrind about a
 * quarter of a batch of 50 claims and completions was SQLite's JSON code. The data text
 * is the caller's, made as json_object made it ({"key":value}, no spaces).
 */
export class EventRows {
  private readonly statements: ByRowCount<Database.Statement>;

  constructor(db: Db) {
    this.statements = new ByRowCount((count) => db.prepare(`INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES ${placeholders(count, 6)}`));
  }

  insert(rows: readonly EventRow[]): void {
    forEachChunk(rows, [], (count, values) => this.statements.of(count).run(values));
  }
}
