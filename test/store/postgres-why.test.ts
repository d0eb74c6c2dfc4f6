import { beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { openStore, type Store, type WhyReport } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { TEST_PERSONAS, syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * `roster why` on PostgreSQL (issue 19): the same script of writes run on a SQLite
 * store and a PostgreSQL one, with one manual clock, gives the same report for
 * every task: unmet dependencies, no supervisor, backoff and delay, a persona at its
 * limit with its holders, ready, running, blocked by a failure, cancelled, a retired persona.
 */
const server = await usePostgres();

async function script(store: Store, clock: ManualClock): Promise<Array<WhyReport | string>> {
  const now = () => clock.now();
  await syncTestPersonas(store, now());
  const e = async (tasks: Parameters<Store["tasks"]["enqueue"]>[0]["tasks"]) => (await store.tasks.enqueue({ tasks, now: now() })).ids;
  const [a, b] = await e([{ ref: "a", persona: "worker", title: "a" }, { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] }]);
  const out: Array<WhyReport | string> = [];
  const why = async (taskId: number) => void out.push(await store.why.explain({ taskId, now: now() }));
  await why(b!);
  await store.agents.register({ id: "sup", name: "s", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: now() });
  const [delayed] = await e([{ persona: "reviewer", title: "later", delayMs: 60_000 }]);
  const [claimed] = await store.tasks.claim({ persona: "worker", agentId: "sup", now: now() });
  clock.advance(10);
  await store.tasks.failIfLeased({ taskId: claimed!.id, leaseToken: claimed!.leaseToken, error: { code: "ADAPTER_FAILED", message: "boom" }, now: now(), random: () => 0.5 });
  await why(claimed!.id);
  await why(delayed!);
  const rs = await e([1, 2, 3].map((i) => ({ persona: "reviewer", title: `r${i}` })));
  await why(rs[0]!);
  const held = await store.tasks.claim({ persona: "reviewer", agentId: "sup", limit: 2, now: now() });
  await why(rs[2]!);
  await why(held[0]!.id);
  const [up, down] = await e([{ ref: "u", persona: "planner", title: "up" }, { ref: "d", persona: "worker", title: "down", dependsOn: ["u"] }]);
  const [p] = await store.tasks.claim({ persona: "planner", agentId: "sup", now: now() });
  await store.tasks.failIfLeased({ taskId: up!, leaseToken: p!.leaseToken, error: { code: "ADAPTER_FAILED", message: "no plan", retryable: false}, now: now() });
  await why(up!);
  await why(down!);
  const [doomed] = await e([{ persona: "reviewer", title: "doomed" }]);
  await store.tasks.cancel({ taskId: doomed!, reason: "not needed", by: "cli:ann", now: now() });
  await why(doomed!);
  const [idle] = await e([{ persona: "planner", title: "p" }]);
  await store.personas.retire({ id: "planner", retired: true, now: now() });
  await why(idle!);
  const worker = TEST_PERSONAS.find((x) => x.id === "worker")!;
  await store.personas.sync({ personas: [{ ...worker, id: "outside", name: "Outside", config: { ...worker.config, id: "outside", external: true } }], now: now() });
  const [outside] = await e([{ persona: "outside", title: "for an MCP agent" }]);
  await why(outside!);
  out.push(await store.why.explain({ taskId: 12345, now: now() }).then(() => "found", (error: { code?: string }) => String(error.code)));
  void a;
  return out;
}

describe.skipIf(!server.available)("postgres: roster why", () => {
  const admin = useAdmin(server);
  let url = "";
  beforeAll(async () => {
    url = await admin.schema("w1");
  });

  it("explains every task as the SQLite store does, word for word", async () => {
    const clockPg = new ManualClock(T0);
    const clockSqlite = new ManualClock(T0);
    const postgres = await openStore({ path: url, now: T0, monotonic: () => clockPg.now() });
    const sqlite = await openStore({ path: ":memory:", now: T0, monotonic: () => clockSqlite.now() });
    try {
      const fromSqlite = await script(sqlite, clockSqlite);
      const fromPostgres = await script(postgres, clockPg);
      expect(fromSqlite.map((r) => (typeof r === "string" ? r : r.reasons.map((x) => x.code).join(",")))).toEqual([
        "dependencies_unmet,no_supervisor",
        "scheduled_later",
        "scheduled_later",
        "ready",
        "persona_at_limit",
        "running",
        "failed",
        "blocked_by,dependencies_unmet",
        "cancelled",
        "persona_retired",
        "external_persona",
        "TASK_NOT_FOUND",
      ]);
      expect(fromPostgres).toEqual(fromSqlite);
    } finally {
      await postgres.close();
      await sqlite.close();
    }
  });
});
