/**
 * One measure of the `pgscale` scenario: `supervisors` real `roster start` processes on
 * one fresh PostgreSQL database drain `depth` no-op tasks (the `echo` adapter) that
 * become ready all at once (one enqueue transaction, committed once every supervisor has
 * registered), and the server's costs of that drain are read beside it (pgscale-probe.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { loadPersonaDir, toPersonaUpsert } from "../../src/personas/load.js";
import { openStore, type TaskInput } from "../../src/store/index.js";
import { commitsSoFar, postmasterPid, processCpuSeconds, serverCpuSeconds, tableWrites, WaitSampler, walBytesBetween, walByTable, walPosition, writesBetween, type TableWrites, type WalShare } from "./pgscale-probe.js";
import { writePersona } from "./support/personas.js";

/** Slots of each supervisor (`roster start --concurrency`), and its worker threads. */
export const PGSCALE_CONCURRENCY = 128;
export const PGSCALE_THREADS = 1;
/** How often the drain's progress and the sessions' waits are sampled, in ms. */
const SAMPLE_MS = 100;

export interface PgscaleRun {
  supervisors: number;
  depth: number;
  /** Claims and completions per second between the 10th and 90th percentile of their times (task_events.at, the server's clock). */
  claimsPerSec: number;
  settlesPerSec: number;
  /** From the enqueue's commit to the last completion seen, in ms. */
  drainMs: number;
  enqueueMs: number;
  /** CPU over the drain, in cores (CPU seconds ÷ wall seconds): the server's processes, and the supervisors' together. */
  serverCores: number;
  supervisorCores: number;
  /** The same CPU per task drained, in ms: the figures that carry over to a server of its own. */
  serverCpuMsPerTask: number;
  supervisorCpuMsPerTask: number;
  /** Transactions committed per task over enqueue and drain (pg_stat_database), the supervisors' renewals and the harness's reads included. */
  commitsPerTask: number;
  walBytesEnqueue: number;
  walBytesDrain: number;
  /** WAL of the drain by table; null when pg_walinspect was not asked for or not available. */
  walByTable: WalShare[] | null;
  /** Rows written per table over enqueue and drain. */
  writes: TableWrites;
  /** Average roster sessions per sample in each state, during the drain. */
  waits: Array<{ what: string; sessions: number }>;
  /** Tasks per claim: task:claimed events per distinct (time, agent), the events one claim statement writes. */
  claimBatches: number;
  loadAverage1m: { before: number; after: number };
}

function startSupervisor(bin: string, url: string, personasDir: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [bin, "start", "--db", url, "--personas", personasDir, "--no-metrics", "--threads", String(PGSCALE_THREADS), "--concurrency", String(PGSCALE_CONCURRENCY), "--log-level", "warn"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let tail = "";
  child.stderr!.on("data", (d: Buffer) => (tail = (tail + d.toString()).slice(-2_000)));
  (child as ChildProcess & { tail: () => string }).tail = () => tail;
  return child;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`pgscale: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
  }
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const kill = setTimeout(() => child.kill("SIGKILL"), 20_000);
          child.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    ),
  );
}

export async function measurePgscale(params: { url: string; bin: string; workDir: string; supervisors: number; depth: number; walDetail: boolean; log: (m: string) => void }): Promise<PgscaleRun> {
  const { url, supervisors, depth } = params;
  const loadBefore = loadavg()[0]!;
  const personasDir = join(params.workDir, `personas-${supervisors}-${depth}-${Date.now()}`);
  mkdirSync(personasDir, { recursive: true });
  writePersona(personasDir, { id: "noop", adapter: { kind: "echo" }, concurrency: 10_000 });
  const store = await openStore({ path: url });
  const admin = new pg.Client({ connectionString: url, application_name: "pgscale" });
  await admin.connect();
  const children: ChildProcess[] = [];
  try {
    await store.personas.sync({ personas: loadPersonaDir(personasDir).map(toPersonaUpsert), now: Date.now(), sourceDir: personasDir });
    const postmaster = await postmasterPid(admin);
    for (let i = 0; i < supervisors; i++) children.push(startSupervisor(params.bin, url, personasDir));
    const exited = () => children.find((c) => c.exitCode !== null || c.signalCode !== null);
    await until(`${supervisors} supervisors to register`, 120_000, async () => {
      const gone = exited();
      if (gone !== undefined) throw new Error(`a supervisor exited before the drain: ${(gone as ChildProcess & { tail: () => string }).tail().trim().slice(-500)}`);
      const n = (await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM agents WHERE status = 'active' AND kind = 'supervisor'")).rows[0]!.n;
      return n >= supervisors ? n : null;
    });
    // Every run starts from a checkpoint, so each pays the same full-page images (the first change of each page after one).
    await admin.query("CHECKPOINT");
    const writes0 = await tableWrites(admin);
    const commits0 = await commitsSoFar(admin);
    const lsn0 = await walPosition(admin);
    const tasks: TaskInput[] = Array.from({ length: depth }, (_, i) => ({ persona: "noop", title: `pgscale ${i}`, payload: { i } }));
    const e0 = performance.now();
    await store.tasks.enqueue({ tasks, now: Date.now() });
    const enqueueMs = performance.now() - e0;
    // The drain starts at the commit: the supervisors were idle, every task became ready at once.
    const t0 = performance.now();
    const lsn1 = await walPosition(admin);
    const server0 = serverCpuSeconds(postmaster);
    const clients0 = children.reduce((sum, c) => sum + processCpuSeconds(c.pid!), 0);
    const samplerClient = new pg.Client({ connectionString: url, application_name: "pgscale" });
    await samplerClient.connect();
    const sampler = new WaitSampler(samplerClient);
    sampler.start(SAMPLE_MS);
    let server1 = server0;
    let clients1 = clients0;
    let t1 = t0;
    try {
      await until(`${depth} tasks to complete`, Math.max(180_000, depth * 20), async () => {
        // Read before the count, so the last reading is within one sample of the end.
        server1 = serverCpuSeconds(postmaster);
        clients1 = children.reduce((sum, c) => sum + processCpuSeconds(c.pid!), 0);
        t1 = performance.now();
        const r = (await admin.query<{ done: number; bad: number }>("SELECT count(*) FILTER (WHERE status = 'completed')::int AS done, count(*) FILTER (WHERE status IN ('failed','cancelled'))::int AS bad FROM task_status")).rows[0]!;
        if (r.bad > 0) throw new Error(`${r.bad} no-op tasks failed during the drain`);
        return r.done >= depth ? r.done : null;
      });
    } finally {
      await sampler.stop();
      await samplerClient.end();
    }
    const lsn2 = await walPosition(admin);
    const rates = (
      await admin.query<{ type: string; n: number; p10: string; p90: string; moments: number }>(
        `SELECT type, count(*)::int AS n, percentile_disc(0.1) WITHIN GROUP (ORDER BY at) AS p10, percentile_disc(0.9) WITHIN GROUP (ORDER BY at) AS p90,
                count(DISTINCT (at, agent_id))::int AS moments
         FROM task_events WHERE type IN ('task:claimed','task:completed') GROUP BY type`,
      )
    ).rows;
    const rate = (type: string) => {
      const r = rates.find((x) => x.type === type);
      if (r === undefined) return Number.NaN;
      const spanMs = Number(r.p90) - Number(r.p10);
      return spanMs > 0 ? (0.8 * r.n) / (spanMs / 1000) : Number.NaN;
    };
    const claimed = rates.find((x) => x.type === "task:claimed");
    await stopAll(children);
    // Backends flush their statistics at exit: the supervisors' last writes are counted now.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const writes = writesBetween(writes0, await tableWrites(admin));
    const commits = (await commitsSoFar(admin)) - commits0;
    const seconds = (t1 - t0) / 1000;
    const run: PgscaleRun = {
      supervisors,
      depth,
      claimsPerSec: rate("task:claimed"),
      settlesPerSec: rate("task:completed"),
      drainMs: t1 - t0,
      enqueueMs,
      serverCores: (server1 - server0) / seconds,
      supervisorCores: (clients1 - clients0) / seconds,
      serverCpuMsPerTask: ((server1 - server0) * 1000) / depth,
      supervisorCpuMsPerTask: ((clients1 - clients0) * 1000) / depth,
      commitsPerTask: commits / depth,
      walBytesEnqueue: await walBytesBetween(admin, lsn0, lsn1),
      walBytesDrain: await walBytesBetween(admin, lsn1, lsn2),
      walByTable: params.walDetail ? await walByTable(admin, lsn1, lsn2) : null,
      writes,
      waits: sampler.averages(),
      claimBatches: claimed === undefined ? Number.NaN : claimed.n / Math.max(1, claimed.moments),
      loadAverage1m: { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0]!.toFixed(2)) },
    };
    params.log(
      `  ${supervisors} supervisor(s), ${depth} queued: ${run.settlesPerSec.toFixed(0)} settles/s, server ${run.serverCores.toFixed(2)} cores, supervisors ${run.supervisorCores.toFixed(2)} cores, WAL ${(run.walBytesDrain / depth).toFixed(0)} B/task (load ${loadBefore.toFixed(1)})`,
    );
    return run;
  } finally {
    await stopAll(children);
    await admin.end();
    await store.close();
  }
}
