import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdirSync } from "node:fs";
import { get } from "node:http";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { openStore, type Store } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { ROSTER_BIN, call, requireBuild } from "../mcp/helpers.js";
import { cleanEnv } from "../helpers/roster-process.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { writePersonas } from "../supervisor/helpers.js";

/**
 * Contention (issue 7, part 2): three `roster start` processes and two `roster mcp`
 * worker processes on one database file, 10,000 tasks, while this process enqueues
 * them in batches (a sixth writer). The supervisors run the `local` persona (echo
 * adapter on worker threads); the `remote` persona is `external: true`, so only the
 * MCP workers claim it.
 *
 * Checked afterwards from the audit trail (task_events): every task completed once,
 * no two leases on one task overlap in time, every process exited 0, and the
 * supervisors' busy-retry counter is exported (SQLITE_BUSY past busy_timeout is
 * retried, never fatal).
 */
export const CONTENTION_TASKS = 10_000;
/** The MCP workers' share: each of their tasks costs a few stdio round trips. */
export const CONTENTION_REMOTE_TASKS = 1_000;
const SUPERVISORS = 3;
const MCP_WORKERS = 2;
/** Tasks per enqueue transaction from the test process. */
const ENQUEUE_BATCH = 500;

interface Proc {
  name: string;
  child: ChildProcessWithoutNullStreams;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stderr lines that mention the database being busy or locked. */
  busyLines: string[];
  stderrTail(): string;
}

/** What a process logs (warn) for each write transaction it retries after SQLITE_BUSY (src/logging/events.ts). */
const BUSY_RETRY_LOG = "database busy; retrying the transaction";

function track(name: string, child: ChildProcessWithoutNullStreams, onLine?: (line: string) => void): Proc {
  const busyLines: string[] = [];
  let tail = "";
  let partial = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-4_000);
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (/SQLITE_BUSY|DATABASE_BUSY|database (is )?(busy|locked)/i.test(line)) busyLines.push(line);
      onLine?.(line);
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  return { name, child, exit, busyLines, stderrTail: () => tail };
}

/** `roster start` as a real process; resolves once it serves /metrics, with its agent id and metrics URL. */
async function startSupervisor(
  index: number,
  dbPath: string,
  personasDir: string,
  cwd: string,
): Promise<Proc & { agentId: string; metricsUrl: string; firstBusyRetry: Promise<void> }> {
  const args = [ROSTER_BIN, "start", "--db", dbPath, "--personas", personasDir, "--threads", "1", "--concurrency", "64", "--metrics-port", "0", "--log-level", "info"];
  const child = spawn(process.execPath, args, { cwd, env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
  let agentId: string | null = null;
  let resolveReady!: (url: string) => void;
  const ready = new Promise<string>((resolve) => (resolveReady = resolve));
  let resolveBusy!: () => void;
  const firstBusyRetry = new Promise<void>((resolve) => (resolveBusy = resolve));
  const proc = track(`supervisor-${index}`, child, (line) => {
    if (!line.startsWith("{")) return;
    const entry = JSON.parse(line) as { msg?: string; agentId?: string; url?: string };
    if (entry.msg === BUSY_RETRY_LOG) resolveBusy();
    if (entry.msg === "supervisor started" && entry.agentId !== undefined) agentId = entry.agentId;
    if (entry.msg === "serving metrics" && entry.url !== undefined) resolveReady(entry.url);
  });
  const metricsUrl = await Promise.race([
    ready,
    proc.exit.then(({ code }) => Promise.reject(new Error(`supervisor-${index} exited with ${code} before it was ready:\n${proc.stderrTail()}`))),
  ]);
  if (agentId === null) throw new Error(`supervisor-${index} served metrics before logging its agent id`);
  return { ...proc, agentId, metricsUrl, firstBusyRetry };
}

/**
 * The SDK's newline-delimited JSON-RPC framing over a child we spawned ourselves,
 * so the test sees the child's exit code (StdioClientTransport hides it).
 */
class ChildTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly buffer = new ReadBuffer();

  constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  async start(): Promise<void> {
    this.child.stdout.on("data", (chunk: Buffer) => {
      this.buffer.append(chunk);
      for (;;) {
        let message: JSONRPCMessage | null;
        try {
          message = this.buffer.readMessage();
        } catch (error) {
          this.onerror?.(error as Error);
          continue;
        }
        if (message === null) break;
        this.onmessage?.(message);
      }
    });
    this.child.stdin.on("error", (error) => this.onerror?.(error));
    this.child.on("close", () => this.onclose?.());
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => this.child.stdin.write(serializeMessage(message), (error) => (error ? reject(error) : resolve())));
  }

  /** Ends stdin: `roster mcp` answers what is in flight, then exits. */
  async close(): Promise<void> {
    this.child.stdin.end();
  }
}

async function startMcpWorker(index: number, dbPath: string, personasDir: string, cwd: string): Promise<Proc & { client: Client }> {
  const args = [ROSTER_BIN, "mcp", "--db", dbPath, "--personas", personasDir, "--profile", "worker", "--log-level", "warn"];
  const child = spawn(process.execPath, args, { cwd, env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
  const proc = track(`mcp-${index}`, child);
  const client = new Client({ name: `contention-mcp-${index}`, version: "0.0.0" });
  await client.connect(new ChildTransport(child));
  return { ...proc, client };
}

/** One MCP worker agent: claim, complete, until `stop()` says every task is done. */
async function mcpWorkerLoop(client: Client, name: string, done: () => boolean): Promise<number> {
  const { agentId } = await call(client, "register_agent", { name, persona: "remote" });
  let completed = 0;
  while (!done()) {
    const claim = await call(client, "claim_task", { agentId, persona: "remote", waitMs: 200 });
    if (claim.task === null) continue;
    await call(client, "complete_task", { taskId: claim.task.id, leaseToken: claim.leaseToken, result: { by: name } });
    completed++;
  }
  return completed;
}

interface EventRow {
  id: number;
  task_id: number;
  type: string;
  at: number;
  agent_id: string | null;
}

/** A claim closes with the first of these for the same task. */
const LEASE_ENDS = new Set(["task:completed", "task:retrying", "task:failed", "task:released", "task:cancelled", "lease:expired"]);

/**
 * Each task's leases as [claimedAt, endedAt] intervals from the audit trail, and
 * every way they break the rules: a claim while another lease is open, a lease
 * that starts before the previous one ended, a lease never closed.
 */
function leaseProblems(events: EventRow[]): { leases: number; problems: string[] } {
  const open = new Map<number, { agent: string | null; at: number; id: number }>();
  const lastEnd = new Map<number, number>();
  const problems: string[] = [];
  let leases = 0;
  for (const e of events) {
    if (e.type === "task:claimed") {
      leases++;
      const held = open.get(e.task_id);
      if (held !== undefined) problems.push(`task ${e.task_id}: claimed by ${e.agent_id} (event ${e.id}) while ${held.agent} held it since event ${held.id}`);
      const prevEnd = lastEnd.get(e.task_id);
      if (prevEnd !== undefined && e.at < prevEnd) problems.push(`task ${e.task_id}: lease from ${e.at} starts before the previous one ended at ${prevEnd}`);
      open.set(e.task_id, { agent: e.agent_id, at: e.at, id: e.id });
    } else if (LEASE_ENDS.has(e.type)) {
      const held = open.get(e.task_id);
      if (held === undefined) continue; // cancelling a pending task, or the reaper's retrying after lease:expired
      if (e.at < held.at) problems.push(`task ${e.task_id}: lease ends at ${e.at}, before its claim at ${held.at}`);
      open.delete(e.task_id);
      lastEnd.set(e.task_id, e.at);
    }
  }
  for (const [taskId, held] of open) problems.push(`task ${taskId}: lease of ${held.agent} from event ${held.id} never ended`);
  return { leases, problems };
}

/** Sums every sample of a counter in a Prometheus text exposition; null when the metric is absent. */
function counterTotal(exposition: string, name: string): number | null {
  if (!exposition.includes(`# TYPE ${name} counter`)) return null;
  let total = 0;
  for (const line of exposition.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

/**
 * GET on a fresh connection. A supervisor whose event loop sat in busy_timeout may
 * close an idle keep-alive connection just as fetch reuses it (ECONNRESET).
 */
function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: ${res.statusCode} ${body}`))));
    }).on("error", reject);
  });
}

/** Each supervisor's roster_db_busy_retries_total, scraped from its /metrics; fails when a supervisor does not export it. */
async function scrapeBusyRetries(supervisors: Array<{ name: string; metricsUrl: string }>): Promise<number[]> {
  return Promise.all(
    supervisors.map(async (s) => {
      const total = counterTotal(await httpGet(s.metricsUrl), "roster_db_busy_retries_total");
      if (total === null) throw new Error(`${s.name} does not export roster_db_busy_retries_total`);
      return total;
    }),
  );
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function untilDone(store: Store, total: number, procs: Proc[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await store.tasks.counts();
    const completed = Object.values(counts).reduce((sum, byState) => sum + (byState.completed ?? 0), 0);
    if (completed === total) return;
    const dead = procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    if (dead !== undefined) throw new Error(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode}) mid-run:\n${dead.stderrTail()}`);
    if (Date.now() > deadline) throw new Error(`timed out with ${JSON.stringify(counts)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the lease-overlap check on an audit trail", () => {
  const ev = (id: number, type: string, at: number, agent: string | null = "a"): EventRow => ({ id, task_id: 1, type, at, agent_id: agent });

  it("accepts a lease that expired and a later claim by another agent", () => {
    const events = [ev(1, "task:claimed", 10), ev(2, "lease:expired", 50), ev(3, "task:retrying", 50), ev(4, "task:claimed", 60, "b"), ev(5, "task:completed", 70, "b")];
    expect(leaseProblems(events)).toEqual({ leases: 2, problems: [] });
  });

  it("reports a claim while another agent's lease is open, and a lease that never ended", () => {
    const { problems } = leaseProblems([ev(1, "task:claimed", 10), ev(2, "task:claimed", 20, "b")]);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/claimed by b \(event 2\) while a held it/);
    expect(problems[1]).toMatch(/never ended/);
  });

  it("reports a lease whose claim time falls before the previous lease ended", () => {
    const { problems } = leaseProblems([ev(1, "task:claimed", 10), ev(2, "task:released", 40), ev(3, "task:claimed", 30, "b"), ev(4, "task:completed", 45, "b")]);
    expect(problems).toEqual(["task 1: lease from 30 starts before the previous one ended at 40"]);
  });
});

describe("contention: three supervisors and two MCP workers on one database file", () => {
  let temp: TempDir | null = null;
  const procs: Proc[] = [];

  afterEach(() => {
    for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    temp?.cleanup();
    temp = null;
  });

  it(
    `completes ${CONTENTION_TASKS} tasks with no overlapping leases and no process dying of SQLITE_BUSY`,
    async () => {
      requireBuild();
      temp = makeTempDir("roster-contention-");
      const dbPath = temp.path("roster.db");
      const localDir = temp.path("local-personas");
      const remoteDir = temp.path("remote-personas");
      mkdirSync(localDir);
      mkdirSync(remoteDir);
      writePersonas(localDir, [{ id: "local", adapter: { kind: "echo" }, concurrency: 64, leaseMs: 30_000 }]);
      // external: only MCP agents serve it (a running supervisor follows persona changes, so it
      // would otherwise take up the persona as soon as an MCP process syncs it).
      writePersonas(remoteDir, [{ id: "remote", adapter: { kind: "echo" }, concurrency: 4, leaseMs: 30_000, external: true }]);

      const store = await openStore({ path: dbPath });
      try {
        await syncPersonas(store, localDir, Date.now());
        const started = performance.now();
        const supervisors = await Promise.all(Array.from({ length: SUPERVISORS }, (_, i) => startSupervisor(i + 1, dbPath, localDir, temp!.dir)));
        procs.push(...supervisors);
        // The remote persona is synced by the MCP processes, after every supervisor loaded its personas.
        const workers = await Promise.all(Array.from({ length: MCP_WORKERS }, (_, i) => startMcpWorker(i + 1, dbPath, remoteDir, temp!.dir)));
        procs.push(...workers);
        expect((await store.personas.get({ id: "remote" }))?.id).toBe("remote");

        let allDone = false;
        const loops = workers.map((w, i) => mcpWorkerLoop(w.client, `mcp-worker-${i + 1}`, () => allDone));
        // Awaited below; when the test fails first, afterEach kills the workers and these reject unobserved.
        for (const loop of loops) loop.catch(() => undefined);

        // Enqueue while everyone claims: one remote task in every CONTENTION_TASKS / CONTENTION_REMOTE_TASKS.
        const every = CONTENTION_TASKS / CONTENTION_REMOTE_TASKS;
        const enqueue = async (from: number, to: number): Promise<void> => {
          for (let offset = from; offset < to; offset += ENQUEUE_BATCH) {
            const tasks = Array.from({ length: ENQUEUE_BATCH }, (_, i) => {
              const n = offset + i;
              return { persona: n % every === 0 ? "remote" : "local", title: `task ${n}`, payload: { n } };
            });
            await store.tasks.enqueue({ tasks, now: Date.now() });
          }
        };
        await enqueue(0, CONTENTION_TASKS / 2);
        // Halfway, with thousands of tasks ready, another connection holds the write lock
        // past every process's busy_timeout (5 s) until a supervisor has logged a busy
        // retry: SQLITE_BUSY outlasting busy_timeout must be retried, not fatal. (Not
        // until all three: better-sqlite3 waits out busy_timeout on the event loop, so
        // each blocked transaction holds back a supervisor's log lines by another 5 s.)
        const locker = new Database(dbPath);
        locker.pragma("busy_timeout = 5000");
        locker.prepare("BEGIN IMMEDIATE").run();
        try {
          await withDeadline(Promise.race(supervisors.map((s) => s.firstBusyRetry)), 60_000, "a supervisor to log a busy retry while the write lock is held");
        } finally {
          locker.prepare("COMMIT").run();
          locker.close();
        }
        await enqueue(CONTENTION_TASKS / 2, CONTENTION_TASKS);
        await untilDone(store, CONTENTION_TASKS, procs, 120_000);
        allDone = true;
        const perWorker = await Promise.all(loops);
        const elapsedMs = performance.now() - started;

        const busyRetries = await scrapeBusyRetries(supervisors);

        for (const w of workers) await w.client.close();
        for (const s of supervisors) s.child.kill("SIGTERM");
        const exits = await Promise.all(procs.map(async (p) => ({ name: p.name, ...(await p.exit) })));
        console.log(
          `contention: ${CONTENTION_TASKS} tasks, ${SUPERVISORS} supervisors + ${MCP_WORKERS} MCP workers, ${Math.round(elapsedMs)} ms; ` +
            `MCP workers completed ${perWorker.join(" + ")}; busy retries per supervisor: ${busyRetries.join(", ")}` +
            `; busy log lines: ${procs.map((p) => p.busyLines.length).join(", ")}`,
        );

        expect(exits).toEqual(procs.map((p) => ({ name: p.name, code: 0, signal: null })));
        // The counter is fed: each supervisor counted the retries it logged (by the scrape), and the hold made some.
        for (const [i, s] of supervisors.entries()) expect(s.busyLines.length).toBeGreaterThanOrEqual(busyRetries[i]!);
        expect(busyRetries.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
        // Every busy line any process wrote is a retry warning, never an error that gave up.
        for (const p of procs) expect(p.busyLines.filter((line) => !line.includes(BUSY_RETRY_LOG))).toEqual([]);
        expect(perWorker.reduce((a, b) => a + b, 0)).toBe(CONTENTION_REMOTE_TASKS);
        expect(perWorker.every((n) => n > 0)).toBe(true);

        expect(await store.tasks.counts()).toEqual({
          local: { completed: CONTENTION_TASKS - CONTENTION_REMOTE_TASKS },
          remote: { completed: CONTENTION_REMOTE_TASKS },
        });
      } finally {
        await store.close();
      }

      // The audit trail, read straight from the file every process wrote.
      const db = new Database(dbPath, { readonly: true });
      try {
        const events = db.prepare("SELECT id, task_id, type, at, agent_id FROM task_events WHERE task_id IS NOT NULL ORDER BY id").all() as EventRow[];
        const { leases, problems } = leaseProblems(events);
        expect(problems).toEqual([]);
        expect(leases).toBeGreaterThanOrEqual(CONTENTION_TASKS);
        const completions = new Map<number, number>();
        for (const e of events) if (e.type === "task:completed") completions.set(e.task_id, (completions.get(e.task_id) ?? 0) + 1);
        expect(completions.size).toBe(CONTENTION_TASKS);
        expect([...completions.values()].every((n) => n === 1)).toBe(true);
        // Every task was completed by an agent of its own kind: supervisors run local, MCP workers remote.
        const byKind = db
          .prepare("SELECT t.persona_id AS persona, a.kind AS kind, COUNT(*) AS n FROM tasks t JOIN task_status s ON s.task_id = t.id JOIN agents a ON a.id = s.assigned_agent_id GROUP BY 1, 2 ORDER BY 1, 2")
          .all();
        expect(byKind).toEqual([
          { persona: "local", kind: "supervisor", n: CONTENTION_TASKS - CONTENTION_REMOTE_TASKS },
          { persona: "remote", kind: "mcp", n: CONTENTION_REMOTE_TASKS },
        ]);
        expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
      } finally {
        db.close();
      }
    },
    180_000,
  );
});
