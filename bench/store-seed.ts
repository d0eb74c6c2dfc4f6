import Database from "better-sqlite3";

/**
 * SQLite-only bulk seeding for the store benchmark: puts `count` ready tasks of one
 * persona into a migrated roster database in one transaction, with the rows the
 * store itself would write at enqueue (tasks, task_status, a task:enqueued event).
 * It is set-based (a recursive CTE, three INSERT … SELECT statements), so a million
 * tasks take seconds; the store's own enqueue is what the benchmark measures, not
 * this. Priorities cycle 0..4 and run_at grows with the id, so the claim index is
 * as deep and as mixed as a real queue's.
 */
export interface SeedOptions {
  persona: string;
  count: number;
  now: number;
  /** Retry policy JSON stored per task (the store copies the persona's at enqueue). */
  retryPolicy?: string;
  maxAttempts?: number;
  timeoutMs?: number;
}

const POLICY = JSON.stringify({ maxAttempts: 3, backoff: "exponential", baseMs: 1000, maxMs: 60000, jitter: 0.2 });

export function seedRosterTasks(path: string, options: SeedOptions): { firstId: number; lastId: number } {
  const db = new Database(path);
  try {
    db.pragma("busy_timeout = 10000");
    db.pragma("synchronous = NORMAL");
    const params = {
      persona: options.persona,
      count: options.count,
      now: options.now,
      policy: options.retryPolicy ?? POLICY,
      maxAttempts: options.maxAttempts ?? 3,
      timeoutMs: options.timeoutMs ?? 60_000,
    };
    const seed = db.transaction(() => {
      const start = (db.prepare("SELECT coalesce(max(id), 0) FROM tasks").pluck().get() as number) + 1;
      const p = { ...params, start };
      db.prepare(`
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < @count)
        INSERT INTO tasks (id, title, persona_id, priority, retry_policy, timeout_ms, created_at)
        SELECT @start + i, 'bench task ' || (@start + i), @persona, i % 5, @policy, @timeoutMs, @now FROM n`).run(p);
      // run_at spreads the tasks over the past, older ids first, so "oldest first" has work to do.
      db.prepare(`
        INSERT INTO task_status (task_id, status, persona_id, priority, unmet_deps, run_at, ready_at, max_attempts, updated_at)
        SELECT id, 'pending', persona_id, priority, 0, @now - @count + (id - @start), @now - @count + (id - @start), @maxAttempts, @now
        FROM tasks WHERE id >= @start`).run(p);
      db.prepare(`
        INSERT INTO task_events (task_id, type, at, attempt, data)
        SELECT id, 'task:enqueued', @now, 0, '{"status":"pending"}' FROM tasks WHERE id >= @start`).run(p);
      return { firstId: start, lastId: start + options.count - 1 };
    });
    return seed.immediate();
  } finally {
    db.close();
  }
}

/** The raw baseline's minimal queue: one table, one partial claim index, nothing else. */
export const BASELINE_SCHEMA = `
  CREATE TABLE IF NOT EXISTS jobs (
    id               INTEGER PRIMARY KEY,
    persona          TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    result           TEXT
  ) STRICT;
  CREATE INDEX IF NOT EXISTS jobs_claim ON jobs(persona, priority DESC, run_at, id) WHERE status = 'pending';`;

export function seedBaselineJobs(db: Database.Database, options: { persona: string; count: number; now: number }): void {
  db.transaction(() => {
    const start = (db.prepare("SELECT coalesce(max(id), 0) FROM jobs").pluck().get() as number) + 1;
    db.prepare(`
      WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < @count)
      INSERT INTO jobs (id, persona, priority, run_at, status)
      SELECT @start + i, @persona, i % 5, @now - @count + i, 'pending' FROM n`).run({ ...options, start });
  }).immediate();
}
