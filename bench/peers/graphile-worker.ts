/**
 * graphile-worker on PostgreSQL, through its documented library API: `runMigrations`,
 * `makeWorkerUtils().addJobs` to enqueue in bulk, then `run()` with a task list of one
 * async no-op task. Settings are the ones its performance page uses for its own
 * figures (https://worker.graphile.org/docs/performance): the local queue (jobs fetched
 * and locked in batches, `localQueue.size` 500) and batched completions
 * (`completeJobBatchDelay: 0`, `failJobBatchDelay: 0`), with `concurrentJobs` set to
 * the benchmark's concurrency and `maxPoolSize` to its guidance, `max(10,
 * concurrentJobs + 2)`. A job is done when its row is deleted (graphile-worker deletes
 * completed jobs); the run ends when the handler has seen every job and the jobs
 * table is empty.
 */
import { createRequire } from "node:module";
import pg from "pg";
import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker";
import { sampleRss } from "../scenarios/support/resources.js";
import { queueRun, type QueueRun } from "./types.js";

const ADD_JOBS_CHUNK = 1_000;
const LOCAL_QUEUE_SIZE = 500;
/** How often the end of a run checks the jobs table, ms. */
const DONE_POLL_MS = 5;

export interface PgPeerOptions {
  jobs: number;
  concurrency: number;
  /** A fresh database of its own. */
  url: string;
}

const silent = new Logger(() => () => {});

export async function runGraphileWorker(options: PgPeerOptions): Promise<QueueRun> {
  const rss = sampleRss();
  const maxPoolSize = Math.max(10, options.concurrency + 2);
  await runMigrations({ connectionString: options.url, logger: silent });
  const utils = await makeWorkerUtils({ connectionString: options.url, logger: silent });
  let enqueueMs: number;
  try {
    const t0 = performance.now();
    for (let i = 0; i < options.jobs; i += ADD_JOBS_CHUNK) {
      const chunk = [];
      for (let j = i; j < Math.min(options.jobs, i + ADD_JOBS_CHUNK); j++) chunk.push({ identifier: "noop", payload: { i: j } });
      await utils.addJobs(chunk);
    }
    enqueueMs = performance.now() - t0;
  } finally {
    await utils.release();
  }

  let seen = 0;
  let allSeen!: () => void;
  const handled = new Promise<void>((resolve) => (allSeen = resolve));
  const t1 = performance.now();
  const runner = await run({
    connectionString: options.url,
    logger: silent,
    noHandleSignals: true,
    taskList: {
      noop: async () => {
        if (++seen === options.jobs) allSeen();
      },
    },
    preset: {
      worker: {
        concurrentJobs: options.concurrency,
        maxPoolSize,
        localQueue: { size: LOCAL_QUEUE_SIZE },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      },
    },
  });
  runner.events.on("job:failed", ({ error }) => {
    throw error;
  });
  await handled;
  await untilEmpty(options.url, "SELECT count(*)::int AS n FROM graphile_worker.jobs");
  const processMs = performance.now() - t1;
  await runner.stop();
  const version = (createRequire(import.meta.url)("graphile-worker/package.json") as { version: string }).version;
  return queueRun("graphile-worker", options.jobs, enqueueMs, processMs, rss.stop().peakRssMb, {
    version,
    concurrentJobs: options.concurrency,
    maxPoolSize,
    localQueue: { size: LOCAL_QUEUE_SIZE },
    completeJobBatchDelay: 0,
    enqueue: `WorkerUtils.addJobs, ${ADD_JOBS_CHUNK} per call`,
  });
}

/** Polls `sql` (returning `n`) on one connection until it reads 0. */
export async function untilEmpty(url: string, sql: string, params: unknown[] = []): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (;;) {
      const { rows } = await client.query<{ n: number }>(sql, params);
      if (rows[0]!.n === 0) return;
      await new Promise((r) => setTimeout(r, DONE_POLL_MS));
    }
  } finally {
    await client.end();
  }
}
