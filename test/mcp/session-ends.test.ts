import { execFile, spawn, type ChildProcess } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { startMcpHttp } from "../../src/mcp/http.js";
import { LOST_LEASES_MIN } from "../../src/store/lost-leases.js";
import { openStore, type Store, type TaskDetail } from "../../src/store/index.js";
import { cleanEnv } from "../helpers/roster-process.js";
import { usePostgres } from "../helpers/postgres.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { call, doubleHolds, requireBuild, ROSTER_BIN, spawnMcpClient, until, writePersona } from "./helpers.js";
import { syncPersonaFolder } from "../helpers/personas.js";

/**
 * Sessions that end holding a task (docs/ARCHITECTURE.md rule 6, src/store/session-end.ts),
 * with real processes: an MCP client (the SDK's Client, in a process of its own that starts
 * the built `roster mcp` over stdio) is killed with SIGKILL while it holds a claimed task, as
 * an agent CLI that crashes on that task would be. Its release is not counted as an attempt
 * but as a lost lease, so the task fails for good (AGENT_LEFT) at its bound instead of being
 * offered forever; one crash does not fail it. A supervisor's own SIGTERM (rule 10) releases
 * uncounted and unbounded, as before. On a SQLite file and on PostgreSQL.
 */
const pg = await usePostgres();
const engines = [
  { name: "sqlite", db: (temp: TempDir) => Promise.resolve(temp.path("roster.db")) },
  ...(pg.available ? [{ name: "postgres", db: () => pg.server().newDatabase("roster_session_ends") }] : []),
];
const CLIENT = fileURLToPath(new URL("../fixtures/mcp-crashing-client.mjs", import.meta.url));
const SUPERVISOR = fileURLToPath(new URL("../fixtures/runtime-start.mjs", import.meta.url));
const run = promisify(execFile);

let temp: TempDir | null = null;
let store: Store | null = null;
const children: ChildProcess[] = [];
const serverPids: number[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const pid of serverPids.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone, as it should be: its stdin ended with its client.
    }
  }
  await store?.close();
  store = null;
  temp?.cleanup();
  temp = null;
});

async function setUp(engine: (typeof engines)[number]): Promise<{ db: string; store: Store; personasDir: string }> {
  requireBuild();
  temp = makeTempDir("roster-mcp-session-ends-");
  const personasDir = temp.path("personas");
  mkdirSync(personasDir);
  // maxAttempts 1: one counted attempt would end the task; its bound of lost leases is LOST_LEASES_MIN (3). 60 s leases: no reap in these tests.
  writePersona(personasDir, { id: "crashy", leaseMs: 60_000, maxAttempts: 1 });
  writePersona(personasDir, { id: "after", leaseMs: 60_000, maxAttempts: 1 });
  writePersona(personasDir, { id: "sleepy", adapter: "sleep", leaseMs: 60_000, maxAttempts: 1 });
  const db = await engine.db(temp);
  store = await openStore({ path: db });
  await syncPersonaFolder(store, personasDir);
  return { db, store, personasDir };
}

/** Starts a client process that claims a task of `persona`, and SIGKILLs it once it holds one; returns what it claimed. */
async function claimThenCrash(db: string, persona: string): Promise<{ taskId: number; attempt: number }> {
  const child = spawn(process.execPath, [CLIENT, ROSTER_BIN, db, temp!.path(), persona], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const claimed = await new Promise<{ taskId: number; attempt: number; serverPid: number }>((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      if (out.includes("\n")) resolve(JSON.parse(out.slice(0, out.indexOf("\n"))));
    });
    child.on("exit", (code) => reject(new Error(`the client exited (${code}) before claiming: ${err}`)));
  });
  serverPids.push(claimed.serverPid);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
  return claimed;
}

const detail = (s: Store, taskId: number): Promise<TaskDetail> => s.tasks.get({ taskId, eventLimit: 1_000 });
const types = (task: TaskDetail): string[] => task.events.map((e) => e.type);
const settled = async (s: Store, taskId: number): Promise<TaskDetail> => {
  await until(async () => !["claimed", "in_progress"].includes((await s.tasks.get({ taskId })).status), `task ${taskId} to come back from its ended session`);
  return detail(s, taskId);
};

describe.each(engines)("MCP sessions that end holding a task ($name)", (engine) => {
  it("a client killed (SIGKILL) while holding a task: released uncounted each time, failed for good (AGENT_LEFT) at the bound, and roster why / show say so", async () => {
    const { db, store } = await setUp(engine);
    const [id, dependent] = (
      await store.tasks.enqueue({
        tasks: [
          { ref: "crash", persona: "crashy", title: "crashes its client" },
          { persona: "after", title: "needs it", dependsOn: ["crash"] },
        ],
        now: Date.now(),
      })
    ).ids as [number, number];
    for (let crash = 1; crash <= LOST_LEASES_MIN; crash++) {
      expect(await claimThenCrash(db, "crashy")).toMatchObject({ taskId: id, attempt: 1 });
      const task = await settled(store, id);
      const trail = types(task).join(", ");
      if (crash < LOST_LEASES_MIN) {
        // Back in the queue at once (no backoff), the attempt not counted; the release says which lost lease it was.
        expect(task, trail).toMatchObject({ status: "pending", attempts: 0, error: null });
        expect(task.events.at(-1)?.type, trail).toBe("task:released");
        expect(task.events.at(-1)?.data).toMatchObject({ reason: expect.stringMatching(new RegExp(`^session ended: the MCP session of mcp-\\S+ ended holding it; lease ${crash} of ${LOST_LEASES_MIN} `)) });
      } else {
        expect(task, trail).toMatchObject({ status: "failed", attempts: 0, error: { code: "AGENT_LEFT" } });
        expect(task.error?.message).toContain(`${LOST_LEASES_MIN} of ${LOST_LEASES_MIN} leases the task may lose are lost`);
        expect(task.events.at(-1)).toMatchObject({ type: "task:failed", data: { counted: false, leasesLost: LOST_LEASES_MIN, error: { code: "AGENT_LEFT" } } });
      }
    }
    const failed = await detail(store, id);
    expect(types(failed).filter((t) => t === "task:claimed")).toHaveLength(LOST_LEASES_MIN);
    expect(types(failed)).not.toContain("lease:expired");
    expect(doubleHolds(id, failed.events)).toEqual([]);
    expect((await store.tasks.get({ taskId: dependent })).status).toBe("blocked");

    // What a person reads: the code, how many leases were lost, and the way back.
    const cwd = temp!.path();
    const why = (await run(process.execPath, [ROSTER_BIN, "why", String(id), "--db", db], { cwd, env: cleanEnv() })).stdout;
    expect(why).toContain("it failed at its bound of lost leases (max(maxAttempts 1, 3)), those attempts not counted (AGENT_LEFT: ");
    expect(why).toContain(`${LOST_LEASES_MIN} of ${LOST_LEASES_MIN} leases the task may lose are lost`);
    expect(why).toContain(`roster retry ${id}`);
    const show = (await run(process.execPath, [ROSTER_BIN, "show", String(id), "--db", db], { cwd, env: cleanEnv() })).stdout;
    expect(show).toMatch(/status\s+failed/);
    expect(show).toMatch(/error\s+AGENT_LEFT: the MCP session of mcp-\S+ ended holding it/);
  });

  it("a task whose client crashed once completes on the next claim", async () => {
    const { db, store } = await setUp(engine);
    const [id] = (await store.tasks.enqueue({ tasks: [{ persona: "crashy", title: "crashed once" }], now: Date.now() })).ids as [number];
    expect(await claimThenCrash(db, "crashy")).toMatchObject({ taskId: id, attempt: 1 });
    expect(await settled(store, id)).toMatchObject({ status: "pending", attempts: 0 });
    const next = await spawnMcpClient({ db, profile: "worker", name: "steady agent", cwd: temp!.path() });
    try {
      const claim = await call(next.client, "claim_task", { persona: "crashy", waitMs: 5_000 });
      expect(claim.task).toMatchObject({ id, attempt: 1 });
      await call(next.client, "complete_task", { taskId: id, leaseToken: claim.leaseToken, result: { done: true } });
    } finally {
      await next.close();
    }
    const task = await detail(store, id);
    expect(task, types(task).join(", ")).toMatchObject({ status: "completed", attempts: 1, result: { done: true } });
    expect(doubleHolds(id, task.events)).toEqual([]);
  });

  it("an HTTP server that stops gives its sessions' tasks back uncounted and not lost; a session's DELETE loses the lease", async () => {
    const { store } = await setUp(engine);
    const [id] = (await store.tasks.enqueue({ tasks: [{ persona: "crashy", title: "held over HTTP" }], now: Date.now() })).ids as [number];
    const holdOverHttp = async (): Promise<{ stop: () => Promise<void>; end: () => Promise<void> }> => {
      const http = await startMcpHttp({ store, port: 0 });
      const transport = new StreamableHTTPClientTransport(new URL(`${http.url}/worker`));
      const client = new Client({ name: "http agent", version: "0.0.0" });
      await client.connect(transport);
      expect((await call(client, "claim_task", { persona: "crashy" })).task).toMatchObject({ id, attempt: 1 });
      return {
        stop: async () => {
          await http.close();
          await client.close();
        },
        end: async () => {
          await transport.terminateSession();
          await client.close();
          await http.close();
        },
      };
    };
    // The server stops (the operator's act, as a supervisor's stop: rule 10), again and again past the bound.
    for (let stop = 1; stop <= LOST_LEASES_MIN + 1; stop++) {
      await (await holdOverHttp()).stop();
      const task = await detail(store, id);
      expect(task, types(task).join(", ")).toMatchObject({ status: "pending", attempts: 0, error: null });
      expect(task.events.at(-1)).toMatchObject({ type: "task:released", data: { reason: "agent deregistered" } });
    }
    // The client ends its session (DELETE): a lost lease, the first.
    await (await holdOverHttp()).end();
    const task = await settled(store, id);
    expect(task).toMatchObject({ status: "pending", attempts: 0 });
    expect(task.events.at(-1)?.data).toMatchObject({ reason: expect.stringContaining(`lease 1 of ${LOST_LEASES_MIN} `) });
  });

  it("a supervisor stopped by SIGTERM while running the task releases it uncounted and unbounded, beyond the bound", async () => {
    const { db, store, personasDir } = await setUp(engine);
    const [id] = (await store.tasks.enqueue({ tasks: [{ persona: "sleepy", title: "long", payload: { ms: 60_000 } }], now: Date.now() })).ids as [number];
    const stops = LOST_LEASES_MIN + 1;
    for (let stop = 1; stop <= stops; stop++) {
      const config = { dbPath: db, personasDir, logLevel: "silent", threads: 1, pollIntervalMs: 20, shutdownGraceMs: 200, metrics: { enabled: false } };
      const child = spawn(process.execPath, [SUPERVISOR, JSON.stringify(config), "{}"], { cwd: temp!.path(), env: cleanEnv(), stdio: ["ignore", "ignore", "pipe"] });
      children.push(child);
      let err = "";
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
      const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      await until(async () => (await store.tasks.get({ taskId: id })).status === "in_progress" || child.exitCode !== null, `stop ${stop}: the supervisor to start the task`);
      child.kill("SIGTERM");
      expect(await exit, err).toBe(0);
      const task = await detail(store, id);
      expect(task, types(task).join(", ")).toMatchObject({ status: "pending", attempts: 0, error: null, assignedAgentId: null });
    }
    const task = await detail(store, id);
    const released = task.events.filter((e) => e.type === "task:released");
    expect(released).toHaveLength(stops);
    for (const e of released) expect(String((e.data as { reason?: unknown }).reason)).not.toMatch(/session ended/);
    expect(types(task)).not.toContain("task:failed");
    // None of those stops was a lost lease: a crashed client's session is still only the first.
    expect(await claimThenCrash(db, "sleepy")).toMatchObject({ taskId: id, attempt: 1 });
    const after = await settled(store, id);
    expect(after).toMatchObject({ status: "pending", attempts: 0 });
    expect(after.events.at(-1)?.data).toMatchObject({ reason: expect.stringContaining(`lease 1 of ${LOST_LEASES_MIN} `) });
  });
});
