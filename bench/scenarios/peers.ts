/**
 * `peers`: BullMQ, plainjob and liteque each enqueue and then process the same no-op
 * jobs with their own documented API, interleaved round by round so that drift on a
 * shared machine falls on all of them alike. A peer that cannot run is reported with
 * the reason.
 */
import { summarize, fmt, fmtSummary } from "./support/stats.js";
import { preparePeers, type PeerName } from "./support/systems.js";
import type { QueueRun } from "../peers/types.js";
import type { Scenario, ScenarioContext, ScenarioResult } from "./support/types.js";

export const PEERS_JOBS = 20_000;
export const PEERS_CONCURRENCY = 256;

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const jobs = ctx.quick ? 500 : PEERS_JOBS;
  const reps = ctx.quick ? 1 : 3;
  const peers = await preparePeers(ctx, ["BullMQ", "plainjob", "liteque"]);
  const runs = new Map<PeerName, QueueRun[]>();
  const skipped = [...peers.skipped];
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const peer of peers.available) {
        if (skipped.some((s) => s.what === peer)) continue;
        ctx.log(`round ${rep + 1}/${reps}: ${peer}, ${jobs} jobs`);
        try {
          const r = await peers.run(peer, jobs, PEERS_CONCURRENCY);
          runs.set(peer, [...(runs.get(peer) ?? []), r]);
          ctx.log(`  ${fmt(r.jobsPerSec)} jobs/s processing, ${fmt(r.enqueuePerSec)} jobs/s enqueue`);
        } catch (error) {
          skipped.push({ what: peer, reason: `not runnable: ${(error as Error).message.split("\n")[0]}` });
        }
      }
    }
  } finally {
    await peers.stop();
  }
  const figures: Record<string, unknown> = {};
  const rows: string[][] = [];
  for (const [peer, list] of runs) {
    const processing = summarize(list.map((r) => r.jobsPerSec));
    const enqueue = summarize(list.map((r) => r.enqueuePerSec));
    const rss = summarize(list.map((r) => r.peakRssMb));
    figures[peer] = { processingJobsPerSec: processing, enqueueJobsPerSec: enqueue, peakRssMb: rss, settings: list[0]!.settings };
    const s = list[0]!.settings;
    rows.push([
      `${peer} ${String(s.version ?? "")}`.trim(),
      fmtSummary(processing),
      fmtSummary(enqueue),
      fmtSummary(rss),
      [`concurrency ${String(s.concurrency)}`, String(s.enqueue ?? ""), String(s.note ?? "")].filter((x) => x !== "").join("; "),
    ]);
  }
  return {
    scenario: "peers",
    title: `BullMQ, plainjob and liteque each enqueue, then process, ${jobs.toLocaleString("en-US")} no-op jobs with their own API (inline handler)`,
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { jobs, repetitions: reps, concurrency: PEERS_CONCURRENCY, redis: peers.redisVersion },
    figures,
    tables: [
      {
        columns: ["system", "processing, jobs/s", "enqueue, jobs/s", "peak RSS, MB", "settings"],
        rows,
      },
    ],
    targets: [],
    notes: [
      `Each run is a fresh child process and a fresh database (or Redis queue); enqueue is timed first, then processing from the worker's start until the last job is recorded done. ${reps} rounds, peers interleaved within each round; median (min–max).`,
    ],
    skipped,
  };
}

export const peersScenario: Scenario = {
  name: "peers",
  description: "BullMQ (private redis-server), plainjob and liteque: the same no-op jobs through each one's own API",
  run,
};
