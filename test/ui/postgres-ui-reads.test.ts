import { beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { openStore, type Store, type UiTaskPageParams } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * The dashboard's reads on PostgreSQL (src/store/postgres/ui-reads.ts): the same script of
 * writes on a SQLite store and a PostgreSQL one, with one manual clock each, gives the same
 * task pages (cursor, goal, states, persona, top level, title), throughput buckets and
 * concurrency keys at their limit.
 */
const server = await usePostgres();

const PAGES: UiTaskPageParams[] = [
  { limit: 50 },
  { limit: 2, beforeId: 5 },
  { rootId: 1, limit: 50 },
  { status: ["failed", "pending"], limit: 50 },
  { status: "completed", limit: 50 },
  { persona: "worker", limit: 3 },
  { topLevel: true, limit: 50 },
  { query: "TITLE", limit: 50 },
];

async function script(store: Store, clock: ManualClock): Promise<unknown[]> {
  const now = () => clock.now();
  await syncTestPersonas(store, now());
  const { ids: [root] } = await store.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "the goal", delayMs: 3_600_000 }], now: now() });
  await store.tasks.enqueue({
    tasks: [
      { ref: "a", persona: "worker", title: "holds the key", priority: 9, policy: { concurrencyKey: "repo:web" } },
      { ref: "b", persona: "worker", title: "next on the key", priority: 8, policy: { concurrencyKey: "repo:web" } },
      { ref: "b2", persona: "worker", title: "last on the key", policy: { concurrencyKey: "repo:web" } },
      { ref: "c", persona: "reviewer", title: "after a", dependsOn: ["a"] },
      { ref: "d", persona: "worker", title: "Fix the Title", priority: 5 },
    ],
    parentId: root!,
    now: now(),
  });
  await store.tasks.enqueue({ tasks: [{ persona: "planner", title: "another goal" }], now: now() });
  const first = await store.tasks.claim({ persona: "worker", agentId: "agent-1", limit: 4, now: now() });
  clock.advance(61_000);
  for (const t of first) {
    if (t.title === "Fix the Title") await store.tasks.failIfLeased({ taskId: t.id, leaseToken: t.leaseToken, error: { code: "ADAPTER_FAILED", message: "no", retryable: false }, now: now() });
    else await store.tasks.completeIfLeased({ taskId: t.id, leaseToken: t.leaseToken, result: "ok", now: now() });
  }
  clock.advance(1_000);
  await store.tasks.claim({ persona: "worker", agentId: "agent-1", limit: 4, now: now() });
  const out: unknown[] = [first.map((t) => t.title)];
  for (const p of PAGES) out.push(await store.ui!.taskPage(p));
  out.push(await store.ui!.throughput({ since: T0 - 60_000, bucketMs: 60_000 }));
  out.push(await store.ui!.fullKeys({ limit: 10 }));
  return out;
}

describe.skipIf(!server.available)("postgres: the dashboard's reads", () => {
  const admin = useAdmin(server);
  let url = "";
  beforeAll(async () => {
    url = await admin.schema("ui1");
  });

  it("answers task pages, throughput and full concurrency keys as the SQLite store does", async () => {
    const clockPg = new ManualClock(T0);
    const clockSqlite = new ManualClock(T0);
    const postgres = await openStore({ path: url, now: T0, monotonic: () => clockPg.now() });
    const sqlite = await openStore({ path: ":memory:", now: T0, monotonic: () => clockSqlite.now() });
    try {
      const fromSqlite = await script(sqlite, clockSqlite);
      const fromPostgres = await script(postgres, clockPg);
      // The script reached what it means to check: a claim the key cut short, a failure, a full key with one pending.
      expect(fromSqlite[0]).toEqual(["holds the key", "Fix the Title"]);
      expect(fromSqlite.at(-1)).toEqual([{ key: "repo:web", running: 1, limit: 1, holders: [3], pending: 1 }]);
      expect((fromSqlite.at(-2) as Array<{ completed: number; failed: number }>).map((b) => [b.completed, b.failed])).toEqual([[1, 1]]);
      expect(fromPostgres).toEqual(fromSqlite);
    } finally {
      await postgres.close();
      await sqlite.close();
    }
  });
});
