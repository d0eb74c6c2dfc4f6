import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyDatabase, openStore, type CopyProgress, type TaskInput } from "../../src/store/index.js";
import { COPY_TABLES, OWN_TABLES } from "../../src/store/copy/tables.js";
import { sqliteTableCounts } from "../../src/store/sqlite/introspect.js";
import { pgState } from "../cli/db-copy-fixture.js";
import { usePostgres } from "../helpers/postgres.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * copyDatabase (src/store/copy/, `roster db copy`): every table either schema has is
 * one the copy knows, and a large database goes across in batches, never whole.
 */
const server = await usePostgres();

const PERSONA = {
  id: "worker",
  name: "Worker",
  definition: "works",
  config: { id: "worker", name: "Worker", adapter: { kind: "echo" }, concurrency: 4, leaseMs: 30_000, timeoutMs: 60_000, retry: { maxAttempts: 2, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 } },
  sourcePath: null,
};

describe.skipIf(!server.available)("copyDatabase", () => {
  let temp: TempDir;
  beforeAll(() => {
    temp = makeTempDir("roster-copy-");
  });
  afterAll(() => temp?.cleanup());

  it("knows every table of both schemas: copied, or kept by each database for itself (a new migration's table must be placed)", async () => {
    const store = await openStore({ path: temp.path("schema.db") });
    const sqliteTables = Object.keys(await sqliteTableCounts(store));
    await store.close();
    const url = await server.server().newDatabase("roster_copy_schema");
    await (await openStore({ path: url })).close();
    const pgTables = Object.keys(await pgState(url)).filter((t) => t !== "migrations");
    const known = new Set([...COPY_TABLES.map((t) => t.name), ...Object.keys(OWN_TABLES)]);
    expect(sqliteTables.filter((t) => !known.has(t))).toEqual([]);
    expect(pgTables.filter((t) => !known.has(t))).toEqual([]);
    expect(pgTables.length).toBeGreaterThan(8);
  });

  it("copies 100,000 tasks with their dependencies and events in batches of 1,000, every row there and the ids' sequence past them", async () => {
    const total = 100_000;
    const source = temp.path("large.db");
    const store = await openStore({ path: source });
    const now = Date.now() - 3_600_000;
    await store.personas.sync({ personas: [PERSONA], now });
    // Chains of ten: each task depends on the one before it in its chain (the first of each is pending, the rest waiting).
    for (let done = 0; done < total; done += 1_000) {
      const tasks: TaskInput[] = Array.from({ length: 1_000 }, (_, i) => ({ ref: `t${i}`, persona: "worker", title: `task ${done + i}`, payload: { n: done + i }, ...(i % 10 === 0 ? {} : { dependsOn: [`t${i - 1}`] }) }));
      await store.tasks.enqueue({ tasks, now });
    }
    const counts = await sqliteTableCounts(store);
    await store.close();
    expect(counts.tasks).toBe(total);

    const target = await server.server().newDatabase("roster_copy_large");
    const progress: CopyProgress[] = [];
    let heapPeak = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    const summary = await copyDatabase({
      from: source,
      to: target,
      now: Date.now(),
      batchRows: 1_000,
      onProgress: (p) => {
        progress.push(p);
        heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const tasksBatches = progress.filter((p) => p.table === "tasks" && p.copied > 0);
    expect(tasksBatches).toHaveLength(total / 1_000);
    expect(tasksBatches.every((p, i) => p.copied === (i + 1) * 1_000)).toBe(true);
    const state = await pgState(target);
    for (const table of ["tasks", "task_status", "task_dependencies", "task_events"]) expect(state[table], table).toBe(counts[table]);
    expect(summary.nextIds.tasks).toEqual({ id: total + 1 });
    expect(summary.nextIds.task_events).toEqual({ id: counts.task_events! + 1 });
    const rows = summary.tables.reduce((sum, t) => sum + t.rows, 0);
    console.log(`db copy: ${rows} rows (${total} tasks) in ${seconds.toFixed(1)} s, ${Math.round(rows / seconds)} rows/s; heap peak ${Math.round((heapPeak - heapBefore) / 1e6)} MB above the start`);
  }, 600_000);
});
