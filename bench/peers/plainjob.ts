/**
 * plainjob with better-sqlite3 (roster's own, 12.x), its documented API: queue.addMany
 * to enqueue, one defineWorker with an inline no-op. plainjob's worker processes one
 * job at a time (no concurrency setting), and sets WAL with synchronous=NORMAL itself.
 */
import Database from "better-sqlite3";
import { createRequire } from "node:module";
import { join } from "node:path";
import { better, defineQueue, defineWorker } from "plainjob";
import { sampleRss } from "../scenarios/support/resources.js";
import { queueRun, type QueueRun, type QueueRunOptions } from "./types.js";

const silent = { error() {}, warn() {}, info() {}, debug() {} };

export async function runPlainjob(options: QueueRunOptions): Promise<QueueRun> {
  const rss = sampleRss();
  const connection = better(new Database(join(options.dir, "plainjob.db")));
  const queue = defineQueue({ connection, logger: silent });
  const data = Array.from({ length: options.jobs }, (_, i) => ({ i }));

  const t0 = performance.now();
  queue.addMany("noop", data);
  const enqueueMs = performance.now() - t0;

  let done = 0;
  let finish!: () => void;
  const allDone = new Promise<void>((resolve) => (finish = resolve));
  const worker = defineWorker("noop", async () => undefined, {
    queue,
    logger: silent,
    onCompleted: () => {
      if (++done === options.jobs) finish();
    },
    onFailed: (_job, error) => {
      throw new Error(`plainjob job failed: ${error}`);
    },
  });
  const t1 = performance.now();
  const running = worker.start();
  await allDone;
  const processMs = performance.now() - t1;
  await worker.stop();
  await running;
  queue.close();
  const version = (createRequire(import.meta.url)("plainjob/package.json") as { version: string }).version;
  return queueRun("plainjob", options.jobs, enqueueMs, processMs, rss.stop().peakRssMb, {
    version,
    concurrency: 1,
    note: "one worker processes one job at a time (plainjob has no concurrency setting)",
    enqueue: "queue.addMany, one call",
  });
}
