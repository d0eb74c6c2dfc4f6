import type { TaskState } from "../types.js";
import type { Db } from "./database.js";

/**
 * task_counts (per persona and state) for the two transitions of the hot path, counted by
 * the statements that make them, once per statement: a claim (pending -> claimed) and a
 * completion of a leased task (claimed or in_progress -> completed). The trigger
 * task_counts_update counts every other change of state, row by row; migration 0012 leaves
 * these two out of it, so each must be counted here by every statement that makes it
 * (src/store/sqlite/claims.ts, src/store/sqlite/transitions.ts), in the same transaction
 * and before anything reads the counts (the claim's gate reads them: docs/ARCHITECTURE.md
 * rule 15). A row the trigger counted cost two upserts in a sub-program: about 30k
 * instructions a row under cachegrind, so a batch of 50 claims and completions 3M.
 */
export class TaskCounts {
  private readonly moveStmt;
  private readonly moveManyStmt;

  constructor(db: Db) {
    // Counting by upsert both ways makes every +n and -n commute (migration 0007).
    this.moveStmt = db.prepare(`
      INSERT INTO task_counts (persona_id, status, n) VALUES (?, ?, ?), (?, ?, ?)
      ON CONFLICT (persona_id, status) DO UPDATE SET n = n + excluded.n`);
    // Rows [persona, status, delta].
    this.moveManyStmt = db.prepare(`
      INSERT INTO task_counts (persona_id, status, n) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true
      ON CONFLICT (persona_id, status) DO UPDATE SET n = n + excluded.n`);
  }

  /** `n` tasks of `persona` went from one state to another. */
  move(persona: string, from: TaskState, to: TaskState, n: number): void {
    if (n > 0) this.moveStmt.run(persona, from, -n, persona, to, n);
  }

  /** Several moves at once: [persona, from, to, n] each. */
  moveMany(moves: ReadonlyArray<readonly [string, TaskState, TaskState, number]>): void {
    if (moves.length === 0) return;
    if (moves.length === 1) {
      const [persona, from, to, n] = moves[0]!;
      this.move(persona, from, to, n);
      return;
    }
    this.moveManyStmt.run(JSON.stringify(moves.flatMap(([persona, from, to, n]) => [[persona, from, -n], [persona, to, n]])));
  }
}
