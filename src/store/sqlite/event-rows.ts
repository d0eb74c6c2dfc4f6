import type Database from "better-sqlite3";
import type { Db } from "./database.js";

/** Rows per INSERT statement; a longer list goes in chunks of this many, then the rest. */
export const EVENT_ROWS_PER_STATEMENT = 64;

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
  private readonly byCount = new Map<number, Database.Statement>();

  constructor(private readonly db: Db) {}

  insert(rows: readonly EventRow[]): void {
    for (let start = 0; start < rows.length; start += EVENT_ROWS_PER_STATEMENT) {
      const end = Math.min(rows.length, start + EVENT_ROWS_PER_STATEMENT);
      // The chunk's values in one flat list, copied by hand: Array.prototype.flat took about
      // 0.5 us a row here, 40 times this loop (issue 14).
      const values: unknown[] = new Array((end - start) * 6);
      let v = 0;
      for (let i = start; i < end; i++) {
        const row = rows[i]!;
        values[v++] = row[0];
        values[v++] = row[1];
        values[v++] = row[2];
        values[v++] = row[3];
        values[v++] = row[4];
        values[v++] = row[5];
      }
      this.statement(end - start).run(values);
    }
  }

  private statement(count: number): Database.Statement {
    let stmt = this.byCount.get(count);
    if (stmt === undefined) {
      stmt = this.db.prepare(`INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES ${Array<string>(count).fill("(?, ?, ?, ?, ?, ?)").join(", ")}`);
      this.byCount.set(count, stmt);
    }
    return stmt;
  }
}
