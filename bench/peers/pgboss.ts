/**
 * pg-boss on PostgreSQL, through its documented API (v10: `start`, `createQueue`,
 * `insert` in bulk, then `work`, or `fetch` and `complete`), its constructor defaults
 * (pool of 10, maintenance and scheduling on, 2 retries) and one standard queue.
 *
 * Two consumers, since pg-boss v10 has no concurrency setting of its own:
 * - `work`: one `work()` worker with `batchSize` = the benchmark's concurrency (the
 *   handler runs its batch at once) and `pollingIntervalSeconds: 0.5`, the least pg-boss
 *   accepts. A v10 worker fetches once per polling interval whatever it finds, so its
 *   rate is bounded by batchSize / interval; several work() calls share that bound.
 * - `fetch/complete`: a loop on the same API without the interval: `fetch` up to
 *   `concurrency` jobs, run them, `complete` their ids, at once again. This is what a
 *   pg-boss user after throughput can write; the scenario compares roster with the
 *   faster of the two.
 * A job is done when its state is `completed`; the run ends when every job is.
 */
import { createRequire } from "node:module";
import PgBoss from "pg-boss";
import { sampleRss } from "../scenarios/support/resources.js";
import { untilEmpty, type PgPeerOptions } from "./graphile-worker.js";
import { queueRun, type QueueRun } from "./types.js";

const INSERT_CHUNK = 1_000;
const POLLING_INTERVAL_SECONDS = 0.5;
const QUEUE = "noop";

export type PgBossMode = "work" | "fetch/complete";

export async function runPgBoss(options: PgPeerOptions & { mode: PgBossMode }): Promise<QueueRun> {
  const rss = sampleRss();
  const boss = new PgBoss({ connectionString: options.url });
  const errors: Error[] = [];
  boss.on("error", (error: Error) => errors.push(error));
  await boss.start();
  try {
    await boss.createQueue(QUEUE);
    const t0 = performance.now();
    for (let i = 0; i < options.jobs; i += INSERT_CHUNK) {
      const chunk: PgBoss.JobInsert[] = [];
      for (let j = i; j < Math.min(options.jobs, i + INSERT_CHUNK); j++) chunk.push({ name: QUEUE, data: { i: j } });
      await boss.insert(chunk);
    }
    const enqueueMs = performance.now() - t0;

    const noop = async (_job: PgBoss.Job<unknown>) => undefined;
    const t1 = performance.now();
    if (options.mode === "work") {
      let seen = 0;
      let allSeen!: () => void;
      const handled = new Promise<void>((resolve) => (allSeen = resolve));
      await boss.work(QUEUE, { batchSize: options.concurrency, pollingIntervalSeconds: POLLING_INTERVAL_SECONDS }, async (jobs) => {
        await Promise.all(jobs.map(noop));
        seen += jobs.length;
        if (seen >= options.jobs) allSeen();
      });
      await handled;
    } else {
      let done = 0;
      while (done < options.jobs) {
        const jobs = await boss.fetch(QUEUE, { batchSize: options.concurrency });
        if (jobs.length === 0) continue;
        await Promise.all(jobs.map(noop));
        await boss.complete(QUEUE, jobs.map((j) => j.id));
        done += jobs.length;
      }
    }
    await untilEmpty(options.url, "SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state <> 'completed'", [QUEUE]);
    const processMs = performance.now() - t1;
    if (errors.length > 0) throw errors[0]!;
    const version = (createRequire(import.meta.url)("pg-boss/package.json") as { version: string }).version;
    return queueRun(`pg-boss (${options.mode})`, options.jobs, enqueueMs, processMs, rss.stop().peakRssMb, {
      version,
      consumer: options.mode === "work" ? `work(), batchSize ${options.concurrency}, pollingIntervalSeconds ${POLLING_INTERVAL_SECONDS}` : `fetch(batchSize ${options.concurrency}) + complete(ids), no wait`,
      pool: "10 (default)",
      enqueue: `insert, ${INSERT_CHUNK} per call`,
    });
  } finally {
    await boss.stop({ graceful: false, wait: true }).catch(() => {});
  }
}
