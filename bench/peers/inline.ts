/**
 * The minimal inline loop: the floor roster's supervisor is compared with. Raw
 * better-sqlite3 on a one-table queue (WAL), claims of up to CLAIM_BATCH rows per
 * UPDATE … RETURNING, the no-op handler awaited inline on the main thread, and the
 * completions of each turn committed in one transaction. No events, no fencing, no
 * dependencies, no worker threads: what is left is the cost of SQLite itself.
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { sampleRss } from "../scenarios/support/resources.js";
import { queueRun, type QueueRun, type QueueRunOptions } from "./types.js";

export const CLAIM_BATCH = 50;

export async function runInlineLoop(options: QueueRunOptions & { synchronous?: "NORMAL" | "FULL" }): Promise<QueueRun> {
  const rss = sampleRss();
  const db = new Database(join(options.dir, "inline.db"));
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${options.synchronous ?? "NORMAL"}`);
  db.exec(`
    CREATE TABLE jobs (
      id INTEGER PRIMARY KEY, status INTEGER NOT NULL DEFAULT 0, payload TEXT NOT NULL,
      lease_expires_at INTEGER, result TEXT, finished_at INTEGER);
    CREATE INDEX jobs_ready ON jobs(id) WHERE status = 0;`);
  const insert = db.prepare("INSERT INTO jobs (payload) VALUES (?)");
  const claim = db.prepare(`
    UPDATE jobs SET status = 1, lease_expires_at = @now + 30000
    WHERE id IN (SELECT id FROM jobs WHERE status = 0 ORDER BY id LIMIT @limit)
    RETURNING id, payload`);
  const complete = db.prepare("UPDATE jobs SET status = 2, result = ?, finished_at = ?, lease_expires_at = NULL WHERE id = ? AND status = 1");
  const completeMany = db.transaction((ids: number[], now: number) => {
    for (const id of ids) complete.run("null", now, id);
  });

  const t0 = performance.now();
  db.transaction(() => {
    for (let i = 0; i < options.jobs; i++) insert.run(JSON.stringify({ i }));
  })();
  const enqueueMs = performance.now() - t0;

  const handler = async (_payload: unknown): Promise<unknown> => null;
  const finished: number[] = [];
  let running = 0;
  let completed = 0;
  let wake: (() => void) | null = null;
  const onDone = (id: number) => {
    finished.push(id);
    running--;
    if (wake !== null) {
      const w = wake;
      wake = null;
      w();
    }
  };

  const t1 = performance.now();
  while (completed < options.jobs) {
    let free = options.concurrency - running;
    while (free > 0) {
      const rows = claim.all({ now: Date.now(), limit: Math.min(free, CLAIM_BATCH) }) as Array<{ id: number; payload: string }>;
      if (rows.length === 0) break;
      for (const row of rows) {
        running++;
        void handler(JSON.parse(row.payload)).then(() => onDone(row.id));
      }
      free -= rows.length;
    }
    if (finished.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    const batch = finished.splice(0);
    completeMany(batch, Date.now());
    completed += batch.length;
  }
  const processMs = performance.now() - t1;
  db.close();
  return queueRun("inline loop", options.jobs, enqueueMs, processMs, rss.stop().peakRssMb, {
    concurrency: options.concurrency,
    claimBatch: CLAIM_BATCH,
    synchronous: options.synchronous ?? "NORMAL",
    note: "raw better-sqlite3, handler inline on the main thread, completions of each turn in one transaction",
  });
}
