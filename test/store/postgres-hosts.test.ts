import { beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store, type TaskInput } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * Several "hosts" on one PostgreSQL schema (issue 19): four stores, each with its own
 * pool, claim and settle one graph of tasks at once, with enqueues landing meanwhile
 * that depend on tasks being completed at that moment. Every task ends completed,
 * each completion is recorded once, every dependent became ready only after all its
 * dependencies, and no transaction error (deadlock, serialization) reaches a caller.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: four stores working one graph at once", () => {
  const admin = useAdmin(server);
  let url: string;
  beforeAll(async () => {
    url = await admin.schema("h1");
  });

  it("480 tasks in fan-in layers plus late dependents: all completed once, in dependency order", async () => {
    const stores: Store[] = [];
    for (let i = 0; i < 4; i++) stores.push(await openStore({ path: url, now: T0 }));
    try {
      await syncTestPersonas(stores[0]!, T0);
      // Transactions rerun after a deadlock or serialization failure (each deadlock costs deadlock_timeout, 1 s, to detect).
      const reruns: number[] = [];
      for (const store of stores) store.events.on("db:busy-retry", (e) => reruns.push(e.attempt));

      // 12 layers of 40; each task of a layer depends on 3 tasks of the layer before.
      const tasks: TaskInput[] = [];
      for (let layer = 0; layer < 12; layer++) {
        for (let i = 0; i < 40; i++) {
          const deps = layer === 0 ? [] : [i, (i + 7) % 40, (i + 19) % 40].map((j) => `l${layer - 1}-${j}`);
          tasks.push({ ref: `l${layer}-${i}`, persona: "worker", title: `l${layer}-${i}`, dependsOn: [...new Set(deps)] });
        }
      }
      const { ids } = await stores[0]!.tasks.enqueue({ tasks, now: T0 });
      let done = false;
      const late: number[] = [];
      // A fifth writer enqueues tasks depending on tasks that are being completed right now.
      const lateWriter = (async () => {
        for (let k = 0; k < 100 && !done; k++) {
          const dep = ids[(k * 37) % ids.length]!;
          const r = await stores[k % 4]!.tasks.enqueue({ tasks: [{ persona: "worker", title: `late-${k}`, dependsOn: [dep] }], now: T0 });
          late.push(r.ids[0]!);
        }
      })();
      const workers = stores.map(async (store, n) => {
        let idle = 0;
        while (idle < 20) {
          const claimed = await store.tasks.claim({ persona: "worker", agentId: `host-${n}`, limit: 8, now: T0 });
          if (claimed.length === 0) {
            idle++;
            await new Promise((r) => setTimeout(r, 10));
            continue;
          }
          idle = 0;
          const results = await store.tasks.settle({
            settlements: claimed.map((t) => ({ kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken, result: { by: n } })),
            now: T0,
          });
          expect(results.every((r) => r.ok)).toBe(true);
        }
      });
      await Promise.all(workers);
      done = true;
      await lateWriter;
      // Whatever the late writer added after the workers stopped: one more pass.
      for (;;) {
        const claimed = await stores[0]!.tasks.claim({ persona: "worker", agentId: "host-0", limit: 100, now: T0 });
        if (claimed.length === 0) break;
        await stores[0]!.tasks.settle({ settlements: claimed.map((t) => ({ kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken })), now: T0 });
      }
      // Completions lock the rows they change in task id order: no deadlock between hosts.
      expect(reruns).toEqual([]);
      expect(await stores[0]!.tasks.counts()).toEqual({ worker: { completed: ids.length + late.length } });
      const once = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM h1.task_events WHERE type = 'task:completed' GROUP BY task_id HAVING count(*) <> 1");
      expect(once.rows).toEqual([]);
      // Every task was claimed only after each of its dependencies completed.
      const early = await admin.query(`
        SELECT d.task_id, d.depends_on FROM h1.task_dependencies d
        JOIN h1.task_events c ON c.task_id = d.task_id AND c.type = 'task:claimed'
        JOIN h1.task_events f ON f.task_id = d.depends_on AND f.type = 'task:completed'
        WHERE c.id < f.id`);
      expect(early.rows).toEqual([]);
      const claims = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM h1.task_events WHERE type = 'task:claimed'");
      expect(claims.rows[0]!.n).toBe(ids.length + late.length);
    } finally {
      for (const store of stores) await store.close();
    }
  }, 180_000);
});
