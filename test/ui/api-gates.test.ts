/** The dashboard API's economics reads: full concurrency keys, cost per task and goal (a real SQLite store on a manual clock). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUiServer, type UiServer } from "../../src/ui/server.js";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { Client } from "./api-client.js";

describe("dashboard API: concurrency keys at their limit, and cost per task and goal", () => {
  let t: TestStore;
  let server: UiServer;
  let c: Client;
  const ids: Record<string, number> = {};

  beforeAll(async () => {
    t = await openTestStore();
    const now = t.clock.now();
    // A goal whose root waits a day; two children share a key of limit 1, a third spends.
    const root = await t.store.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "the goal", delayMs: 86_400_000 }], now });
    ids.goal = root.ids[0]!;
    const kids = await t.store.tasks.enqueue({
      tasks: [
        { ref: "spend", persona: "worker", title: "spends", priority: 10 },
        { ref: "a", persona: "worker", title: "holds the key", priority: 5, policy: { concurrencyKey: "repo:web" } },
        { ref: "b", persona: "worker", title: "waits for the key", policy: { concurrencyKey: "repo:web" } },
      ],
      parentId: ids.goal,
      now,
    });
    Object.assign(ids, kids.refs);
    const [spend] = await t.store.tasks.claim({ persona: "worker", agentId: "agent-1", limit: 1, now });
    expect(spend!.id).toBe(ids.spend);
    await t.store.tasks.completeIfLeased({ taskId: spend!.id, leaseToken: spend!.leaseToken, result: "ok", usage: { model: "test-model", inputTokens: 300, outputTokens: 20, costUsd: 0.125 }, now });
    const claimed = await t.store.tasks.claim({ persona: "worker", agentId: "agent-1", limit: 5, now });
    // The key lets one of its tasks run; the other stays pending behind it.
    expect(claimed.map((x) => x.id)).toEqual([ids.a]);
    server = await startUiServer({ store: t.store, port: 0, clock: t.clock, publicDir: "/nonexistent-ui-public" });
    c = new Client(server.url);
    await c.login();
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it("lists the full key in the overview's attention with its holder and what waits, and the spend per goal", async () => {
    const r = await c.req("GET", "/api/overview");
    expect(r.status).toBe(200);
    expect(r.body.attention.keys).toEqual([{ key: "repo:web", running: 1, limit: 1, holders: [ids.a], pending: 1 }]);
    expect(r.body.cost.byGoal).toEqual([expect.objectContaining({ key: String(ids.goal), attempts: 1, costUsd: 0.125, tokens: 320 })]);
  });

  it("answers a task's own cost and its goal's, and the goal graph's cost", async () => {
    const task = await c.req("GET", `/api/tasks/${ids.spend}`);
    expect(task.body.cost).toEqual({ costUsd: 0.125, tokens: 320, attempts: 1, unpriced: 0 });
    expect(task.body.goalCost).toMatchObject({ costUsd: 0.125, tokens: 320, attempts: 1 });
    const waiting = await c.req("GET", `/api/tasks/${ids.b}`);
    expect(waiting.body.cost).toEqual({ costUsd: 0, tokens: 0, attempts: 0, unpriced: 0 });
    expect(waiting.body.why.reasons.map((x: { code: string }) => x.code)).toContain("concurrency_key_full");
    const graph = await c.req("GET", `/api/goals/${ids.goal}/graph`);
    expect(graph.body.cost).toMatchObject({ key: "total", costUsd: 0.125, tokens: 320, attempts: 1 });
  });

  it("lists no key once its holder ends", async () => {
    const [held] = (await t.store.tasks.running({ limit: 10 })).filter((x) => x.id === ids.a);
    expect(held).toBeDefined();
    await t.store.tasks.cancel({ taskId: ids.a!, now: t.clock.now() });
    expect((await c.req("GET", "/api/overview")).body.attention.keys).toEqual([]);
  });
});
