import { readdirSync } from "node:fs";
import { hostname } from "node:os";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store, type TaskRecord } from "../../src/store/index.js";
import { usePostgres } from "../helpers/postgres.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { WORKER, cliJson, pgState, writePersonas } from "./db-copy-fixture.js";
import { roster } from "./helpers.js";

/**
 * `roster db copy` (issue 19, deliverable 6): what it refuses, and what it reports
 * instead of silently dropping. Every refusal leaves the target as it was (for
 * PostgreSQL, not even the migrations stay: they ran in the copy's transaction).
 */
const server = await usePostgres();

describe.skipIf(!server.available)("roster db copy refuses, rolls back, reports", () => {
  let temp: TempDir;
  let personas: string;
  let n = 0;

  beforeAll(() => {
    temp = makeTempDir("roster-db-copy-refusals-");
    personas = temp.path("personas");
    writePersonas(personas);
  });
  afterAll(() => temp?.cleanup());

  /** A new SQLite database with the test personas, and `play` run on its store. */
  async function sourceWith(play: (store: Store) => Promise<void>): Promise<string> {
    const db = temp.path(`source-${++n}.db`);
    await cliJson(["init", "--db", db, "--personas", personas]);
    const store = await openStore({ path: db });
    try {
      await play(store);
    } finally {
      await store.close();
    }
    return db;
  }

  it("refuses a source on which a supervisor looks alive, writing nothing; --allow-running copies its snapshot, the lease with it", async () => {
    const now = Date.now();
    const source = await sourceWith(async (store) => {
      await store.agents.register({ id: "supervisor-live", name: "live", kind: "supervisor", pid: process.pid, hostname: hostname(), heartbeatTimeoutMs: 60_000, now });
      const [id] = (await store.tasks.enqueue({ tasks: [{ persona: WORKER, title: "running" }], now })).ids;
      await store.tasks.claimById({ taskId: id!, agentId: "supervisor-live", now });
    });
    const target = await server.server().newDatabase("roster_copy_live");
    const refused = await roster(["db", "copy", "--from", source, "--to", target]);
    expect(refused.stderr).toMatch(/^roster: SOURCE_IN_USE: --from .*source-\d+\.db: 1 agent\(s\) look alive: supervisor-live \(supervisor, pid \d+ on .+\), last heartbeat \d+ s ago; 1 task\(s\) are leased.*--allow-running/m);
    expect(refused.code).toBe(1);
    expect(await pgState(target)).toEqual({});

    const copied = await roster(["db", "copy", "--from", source, "--to", target, "--allow-running", "--json"]);
    expect(copied.code, copied.stderr).toBe(0);
    expect((JSON.parse(copied.stdout) as { liveAgents: Array<{ id: string }> }).liveAgents.map((a) => a.id)).toEqual(["supervisor-live"]);
    const [task] = await cliJson<TaskRecord[]>(["ls", "--db", target]);
    expect([task!.status, task!.assignedAgentId, task!.attempts]).toEqual(["claimed", "supervisor-live", 1]);
  });

  it("refuses a PostgreSQL source with a live worker (judged on the server's clock), creating no file", async () => {
    const source = await server.server().newDatabase("roster_copy_live_pg");
    await cliJson(["init", "--db", source, "--personas", personas]);
    const store = await openStore({ path: source });
    try {
      await store.agents.register({ id: "mcp-live", name: "worker", kind: "mcp", heartbeatTimeoutMs: 60_000, now: Date.now() });
    } finally {
      await store.close();
    }
    const res = await roster(["db", "copy", "--from", source, "--to", temp.path("from-live.db")]);
    expect(res.stderr).toMatch(/^roster: SOURCE_IN_USE: --from postgres:\/\/.*: 1 agent\(s\) look alive: mcp-live \(mcp\)/m);
    expect(res.code).toBe(1);
    expect(readdirSync(temp.dir).filter((f) => f.includes("from-live"))).toEqual([]);
  });

  it("a row PostgreSQL cannot hold (a NUL character) rolls the whole copy back, migrations included, naming the table and ids", async () => {
    const source = await sourceWith(async (store) => {
      await store.tasks.enqueue({ tasks: [{ persona: WORKER, title: "fine" }, { persona: WORKER, title: "nul\u0000inside" }, { persona: WORKER, title: "also fine" }], now: Date.now() - 60_000 });
    });
    const target = await server.server().newDatabase("roster_copy_nul");
    const res = await roster(["db", "copy", "--from", source, "--to", target, "--batch-size", "1"]);
    expect(res.stderr).toMatch(/^roster: COPY_ROW_REFUSED: --to postgres:\/\/.*: writing tasks \(id 2\): .*0x00/m);
    expect(res.code).toBe(1);
    expect(await pgState(target)).toEqual({});
  });

  it("refuses a schema that holds another program's tables, leaving them alone", async () => {
    const source = await sourceWith(async () => {});
    const target = await server.server().newDatabase("roster_copy_foreign");
    const client = new pg.Client({ connectionString: target });
    await client.connect();
    await client.query("CREATE TABLE invoices (id int PRIMARY KEY)");
    await client.end();
    const res = await roster(["db", "copy", "--from", source, "--to", target]);
    expect(res.stderr).toMatch(/^roster: DATABASE_INVALID: --to .*holds tables that are not roster's \(invoices\)/m);
    expect(res.code).toBe(1);
    expect(await pgState(target)).toEqual({ invoices: 0 });
  });

  it("copies into a schema `roster init` prepared, the source's personas replacing its own, budgets with the rest", async () => {
    const source = await sourceWith(async (store) => {
      const now = Date.now() - 60_000;
      const [id] = (await store.tasks.enqueue({ tasks: [{ persona: WORKER, title: "goal with a budget" }], now })).ids;
      await store.economics.setBudget({ scope: "goal", key: String(id), maxCostUsd: 5, now, by: "cli" });
    });
    const target = await server.server().newDatabase("roster_copy_init");
    const otherPersonas = temp.path("other-personas");
    await cliJson(["init", "--db", target, "--personas", otherPersonas]); // The bundled example personas.
    const res = await roster(["db", "copy", "--from", source, "--to", target]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^copied .*source-\d+\.db to postgres:\/\/.* in one transaction: 1 tasks with their history$/m);
    expect(res.stdout).toMatch(/^budgets +1$/m);
    expect(res.stdout).not.toMatch(/not copied/);
    const personasThere = await cliJson<Array<{ id: string; sourcePath: string | null }>>(["personas", "--db", target]);
    const worker = personasThere.find((p) => p.id === WORKER);
    expect(worker?.sourcePath).toContain(personas);
    expect(personasThere.map((p) => p.id)).toEqual(expect.arrayContaining([WORKER, "gate", "reviewer"]));
    expect(await cliJson(["budget", "ls", "--db", target])).toEqual(await cliJson(["budget", "ls", "--db", source]));
  });
});
