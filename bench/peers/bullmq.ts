/**
 * BullMQ on a local Redis, with its documented API: Queue.addBulk to enqueue, one
 * Worker with `concurrency` and an inline async no-op processor. Completed jobs are
 * kept (BullMQ's default), as roster keeps its completed tasks.
 */
import { Queue, Worker } from "bullmq";
import { createRequire } from "node:module";
import { sampleRss } from "../scenarios/support/resources.js";
import { queueRun, type QueueRun, type QueueRunOptions } from "./types.js";

const ADD_BULK_CHUNK = 1_000;

export async function runBullmq(options: QueueRunOptions & { redisPort: number }): Promise<QueueRun> {
  const rss = sampleRss();
  const connection = { host: "127.0.0.1", port: options.redisPort, maxRetriesPerRequest: null };
  const name = `bench-${process.pid}-${Date.now()}`;
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();

  const t0 = performance.now();
  for (let i = 0; i < options.jobs; i += ADD_BULK_CHUNK) {
    const chunk = [];
    for (let j = i; j < Math.min(options.jobs, i + ADD_BULK_CHUNK); j++) chunk.push({ name: "noop", data: { i: j } });
    await queue.addBulk(chunk);
  }
  const enqueueMs = performance.now() - t0;

  let done = 0;
  let finish!: () => void;
  const allDone = new Promise<void>((resolve) => (finish = resolve));
  const worker = new Worker(name, async () => undefined, { connection, concurrency: options.concurrency, autorun: false });
  worker.on("completed", () => {
    if (++done === options.jobs) finish();
  });
  worker.on("failed", (_job, error) => {
    throw error;
  });
  const t1 = performance.now();
  const running = worker.run();
  await allDone;
  const processMs = performance.now() - t1;
  await worker.close();
  await running;
  await queue.obliterate({ force: true });
  await queue.close();
  const version = (createRequire(import.meta.url)("bullmq/package.json") as { version: string }).version;
  return queueRun("BullMQ", options.jobs, enqueueMs, processMs, rss.stop().peakRssMb, {
    version,
    concurrency: options.concurrency,
    enqueue: `Queue.addBulk, ${ADD_BULK_CHUNK} per call`,
  });
}
