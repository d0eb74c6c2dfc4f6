/**
 * The faults of issue 12, each run inside one cycle of the chaos run while that
 * cycle's supervisor works, each drawn by the cycle's seeded random numbers and
 * recorded in the run's history:
 *
 * - stop:   SIGSTOP the supervisor for longer than its leases, then SIGCONT.
 * - cancel: `roster cancel` running tasks that cannot fail, then `roster retry` them.
 * - hang:   a task whose module adapter never returns and ignores its abort, beside
 *           innocent sleep tasks on the same threads (enqueued before the spawn).
 * - lock:   a separate process holds the write lock (SQLite BEGIN IMMEDIATE; PostgreSQL
 *           LOCK TABLE task_status IN EXCLUSIVE MODE) across the run_at of delayed tasks.
 * - disk:   the database's tmpfs filled with a ballast file, then the file deleted (SQLite only).
 * - leader: kill -9 of running shell leaders that have grandchildren.
 * - skew:   the cycle's supervisor runs with ROSTER_CLOCK_OFFSET_MS (±30 s), beside a
 *           companion on the true clock (set up by the runner, no action here).
 */
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Store } from "../../src/store/index.js";
import { runNode, sleep, startChild, timeout, type Child } from "./child.js";
import type { ChaosDatabase } from "./database.js";
import type { ChaosHistory, FaultKind, GrandchildLine, SupervisorRecord } from "./history.js";
import { delayedBatch } from "./plan.js";
import { randomInt, type Random } from "./random.js";

export interface FaultContext {
  cycle: number;
  random: Random;
  store: Store;
  /** The SQLite file or postgres:// URL (for the CLI and the lock holder), and the runner's direct reads of it. */
  dbPath: string;
  database: ChaosDatabase;
  /** dist/src/cli/bin.js of the run's build copy. */
  bin: string;
  history: ChaosHistory;
  leaseMs: number;
  /** Longest write lock / full disk, in ms. */
  maxLockMs: number;
  maxDiskMs: number;
  /** The tmpfs holding the database, or null when none could be mounted. */
  diskDir: string | null;
  treeLog: string;
  supervisorLog: string;
  log: (line: string) => void;
}

function record(ctx: FaultContext, kind: FaultKind, from: number, detail: string, taskIds: number[]): void {
  ctx.history.faults.push({ kind, cycle: ctx.cycle, from, to: Date.now(), detail, taskIds });
}

/** SIGSTOP for 2–4 leases (and up to a second more), then SIGCONT. */
export async function stopFault(ctx: FaultContext, child: Child, target: SupervisorRecord): Promise<void> {
  const ms = randomInt(ctx.random, 2 * ctx.leaseMs, 4 * ctx.leaseMs + 1_000);
  if (child.exited) return;
  const from = Date.now();
  child.process.kill("SIGSTOP");
  const held = await ctx.database.probeWriteLock(from + ms);
  child.process.kill("SIGCONT");
  const to = Date.now();
  target.pauses.push({ from, to });
  record(ctx, "stop", from, `SIGSTOP ${target.label} (pid ${target.pid}) for ${to - from} ms, leases ${ctx.leaseMs} ms`, []);
  // Frozen in the middle of a write transaction, it held the database's write lock (SQLite) or
  // its rows (PostgreSQL) the whole time: writers queued behind it (a user's paused process does
  // the same). That stretch is a no-commit window like the lock fault's.
  if (held !== null) ctx.history.faults.push({ kind: "lock", cycle: ctx.cycle, from: held, to, detail: `the stopped ${target.label} held the write lock`, taskIds: [] });
}

const CANCELLABLE = ["sleep", "shell", "echo"];

/** `roster cancel` of 1–3 running tasks that cannot fail, then `roster retry` of each after 100–800 ms. */
export async function cancelFault(ctx: FaultContext): Promise<void> {
  const want = randomInt(ctx.random, 1, 3);
  const pause = randomInt(ctx.random, 100, 800);
  const draws = [ctx.random(), ctx.random(), ctx.random()];
  const from = Date.now();
  let running: number[] = [];
  for (let tries = 0; tries < 20 && running.length === 0; tries++) {
    running = (await ctx.store.tasks.list({ status: ["claimed", "in_progress"], limit: 0 })).filter((t) => CANCELLABLE.includes(t.persona)).map((t) => t.id).sort((a, b) => a - b);
    if (running.length === 0) await sleep(150);
  }
  const chosen: number[] = [];
  for (let i = 0; i < want && running.length > 0; i++) chosen.push(running.splice(Math.floor(draws[i]! * running.length), 1)[0]!);
  const records = [];
  for (const taskId of chosen) {
    const cancelAt = Date.now();
    const r = await runNode([ctx.bin, "cancel", String(taskId), "--db", ctx.dbPath, "--json", "--reason", `chaos cycle ${ctx.cycle}`]);
    const rec = { taskId, cycle: ctx.cycle, cancelAt, cancelled: r.code === 0, retryAt: null as number | null, retried: false, error: r.code === 0 ? null : r.stderr.trim().slice(0, 300) };
    ctx.history.cancels.push(rec);
    records.push(rec);
  }
  await sleep(pause);
  for (const rec of records) {
    if (!rec.cancelled) continue;
    rec.retryAt = Date.now();
    const r = await runNode([ctx.bin, "retry", String(rec.taskId), "--db", ctx.dbPath, "--json"]);
    rec.retried = r.code === 0;
    if (!rec.retried) rec.error = r.stderr.trim().slice(0, 300);
  }
  const done = records.filter((r) => r.cancelled);
  record(ctx, "cancel", from, `roster cancel of ${chosen.length} running task(s) (${done.length} cancelled, ${done.filter((r) => r.retried).length} retried ${pause} ms later)`, chosen);
}

/** Waits for the hung task to end (its TIMEOUT) or for its time limit and a margin to pass. */
export async function hangFault(ctx: FaultContext, hangId: number, innocents: number[], limitMs: number): Promise<void> {
  const from = Date.now();
  const deadline = from + limitMs + 3_000;
  let status = "pending";
  while (Date.now() < deadline) {
    status = (await ctx.store.tasks.get({ taskId: hangId }))?.status ?? "missing";
    if (status === "failed" || status === "completed") break;
    await sleep(100);
  }
  record(ctx, "hang", from, `hung task ${hangId} beside ${innocents.length} innocent sleep tasks; ${status} after ${Date.now() - from} ms`, [hangId, ...innocents]);
}

/** Enqueues 3–6 delayed tasks due within the lock, then holds the write lock in another process for 1 s – maxLockMs. */
export async function lockFault(ctx: FaultContext, lockScript: string): Promise<void> {
  const holdMs = randomInt(ctx.random, 1_000, Math.max(1_000, ctx.maxLockMs));
  const n = randomInt(ctx.random, 3, 6);
  const delays = Array.from({ length: n }, () => randomInt(ctx.random, 300, holdMs));
  const now = Date.now();
  const { ids } = await ctx.store.tasks.enqueue({ tasks: delayedBatch({ random: ctx.random, cycle: ctx.cycle, delays }), createdBy: "chaos", now });
  ids.forEach((id, i) => (ctx.history.dueAt[id] = now + delays[i]!));
  const holder = startChild([lockScript, ctx.dbPath, String(holdMs)], ctx.supervisorLog, `cycle ${ctx.cycle} write lock ${holdMs} ms`, /^unlocked /m);
  const t = timeout(holdMs + 60_000);
  await Promise.race([holder.exit, t.promise]);
  t.cancel();
  const locked = /^locked (\d+)/m.exec(holder.stdoutTail());
  const unlocked = /^unlocked (\d+)/m.exec(holder.stdoutTail());
  if (locked === null || unlocked === null) {
    if (!holder.exited) holder.process.kill("SIGKILL");
    ctx.log(`cycle ${ctx.cycle}: the write lock holder did not run (${holder.stderrTail().trim().slice(-300)})`);
    record(ctx, "lock", now, `write lock FAILED to run: ${holder.stderrTail().trim().slice(-200)}`, ids);
    return;
  }
  ctx.history.faults.push({
    kind: "lock",
    cycle: ctx.cycle,
    from: Number(locked[1]),
    to: Number(unlocked[1]),
    detail: `${ctx.database.engine === "postgres" ? "LOCK TABLE task_status IN EXCLUSIVE MODE" : "BEGIN IMMEDIATE"} held ${Number(unlocked[1]) - Number(locked[1])} ms by another process; ${n} delayed tasks due ${delays.map((d) => `+${d}`).join(", ")} ms after enqueue`,
    taskIds: ids,
  });
}

/**
 * Fills the tmpfs that holds the database with a ballast file (1 MiB writes, then
 * 4 KiB ones, until ENOSPC), holds it full for 1 s – maxDiskMs, deletes it.
 */
export async function diskFault(ctx: FaultContext): Promise<void> {
  const holdMs = randomInt(ctx.random, 1_000, Math.max(1_000, ctx.maxDiskMs));
  if (ctx.diskDir === null) {
    record(ctx, "disk", Date.now(), "skipped: no tmpfs could be mounted for the database", []);
    ctx.history.faults[ctx.history.faults.length - 1]!.to = ctx.history.faults[ctx.history.faults.length - 1]!.from;
    return;
  }
  const ballast = join(ctx.diskDir, "ballast");
  const fd = openSync(ballast, "w");
  let bytes = 0;
  for (const size of [1 << 20, 4_096, 512]) {
    const chunk = Buffer.alloc(size, 0x5a);
    for (;;) {
      try {
        bytes += writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
        throw error;
      }
    }
  }
  closeSync(fd);
  const from = Date.now();
  await sleep(holdMs);
  rmSync(ballast, { force: true });
  record(ctx, "disk", from, `tmpfs full for ${Date.now() - from} ms (ballast ${(bytes / (1 << 20)).toFixed(1)} MiB)`, []);
}

/** The lines of bench/chaos/tree.mjs's log. */
export function readTreeLog(file: string): { starts: Array<{ taskId: number; attempt: number; pid: number; at: number }>; done: Set<string>; grandchildren: GrandchildLine[] } {
  const starts = [];
  const done = new Set<string>();
  const grandchildren: GrandchildLine[] = [];
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  for (const line of text.split("\n")) {
    const [word, task, attempt, pid, at] = line.trim().split(" ");
    if (at === undefined) continue;
    const fields = { taskId: Number(task), attempt: Number(attempt), pid: Number(pid), at: Number(at) };
    if (word === "start") starts.push(fields);
    else if (word === "done") done.add(`${task} ${attempt}`);
    else if (word === "gcstart" || word === "gcdone") grandchildren.push({ event: word, ...fields });
  }
  return { starts, done, grandchildren };
}

/**
 * Whether the process runs. A zombie (state Z: dead, not yet reaped by its new
 * parent; init reaps orphans only every second or two on this VM) does not.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}

/**
 * kill -9 of 1–2 running tree leaders of `taskIds` (waiting up to 5 s for them to
 * start), then, 2.5 s later, which of their grandchildren are still alive.
 */
export async function leaderFault(ctx: FaultContext, taskIds: number[]): Promise<void> {
  const want = randomInt(ctx.random, 1, 2);
  const waitMs = randomInt(ctx.random, 200, 700);
  const from = Date.now();
  const killed: Array<{ taskId: number; attempt: number; pid: number; at: number; killedAt: number }> = [];
  const deadline = from + 5_000;
  while (killed.length < want && Date.now() < deadline) {
    const log = readTreeLog(ctx.treeLog);
    const running = log.starts.filter((s) => taskIds.includes(s.taskId) && !log.done.has(`${s.taskId} ${s.attempt}`) && !killed.some((k) => k.pid === s.pid) && alive(s.pid));
    const target = running.find((s) => Date.now() - s.at >= waitMs);
    if (target === undefined) {
      await sleep(100);
      continue;
    }
    try {
      process.kill(target.pid, "SIGKILL");
    } catch {
      continue;
    }
    const at = Date.now();
    ctx.history.leaderKills.push({ taskId: target.taskId, attempt: target.attempt, pid: target.pid, at, cycle: ctx.cycle });
    killed.push({ ...target, killedAt: at });
  }
  if (killed.length > 0) {
    // The adapter ends the group when it sees the leader die: SIGTERM at once, SIGKILL after its
    // 1.5 s grace; look after that grace and a second more.
    await sleep(2_500);
    // The killed leader's own grandchildren: started between its start and its kill. A later run of the
    // same attempt number (a reaped lease does not count an attempt) has grandchildren of its own.
    const gcs = readTreeLog(ctx.treeLog).grandchildren.filter(
      (g) => g.event === "gcstart" && killed.some((k) => k.taskId === g.taskId && k.attempt === g.attempt && g.at >= k.at && g.at <= k.killedAt),
    );
    for (const g of gcs) if (alive(g.pid)) ctx.history.survivingGrandchildren.push(g.pid);
  }
  record(ctx, "leader", from, `kill -9 of ${killed.length} shell leader(s) with grandchildren: ${killed.map((k) => `task ${k.taskId} attempt ${k.attempt} pid ${k.pid}`).join(", ") || "none was running"}`, killed.map((k) => k.taskId));
}
