import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore, type ClaimedTask, type PersonaUpsert, type Store } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { TEST_PERSONAS } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * The economic gates under claimers racing on several "hosts" (issue 19 with issue 16's
 * gates): four stores, each with its own pool, fire their claims at one PostgreSQL schema
 * at the same moment, round after round. Claimed tasks are held (not settled) until the
 * round has ended, so a key or a window overshot by a race would still be visible when
 * the round's count is read: a concurrency key never has more than its limit leased, a
 * rate window never gives more than its starts, a half-open breaker gives one probe. No
 * transaction error (deadlock, serialization) reaches a caller.
 */
const server = await usePostgres();
const HOSTS = 4;

describe.skipIf(!server.available)("postgres: economic gates under racing claimers", () => {
  const admin = useAdmin(server);
  let stores: Store[] = [];
  let schema = "";
  let n = 0;
  const reruns: number[] = [];
  beforeEach(async () => {
    schema = `race${++n}`;
    const url = await admin.schema(schema);
    stores = [];
    for (let i = 0; i < HOSTS; i++) stores.push(await openStore({ path: url, now: T0 }));
    reruns.length = 0;
    for (const store of stores) store.events.on("db:busy-retry", (e) => reruns.push(e.attempt));
  });
  afterEach(async () => {
    for (const store of stores) await store.close();
  });

  async function personas(extra: Record<string, Record<string, unknown>>): Promise<void> {
    const list: PersonaUpsert[] = TEST_PERSONAS.map((p) => ({ ...p, config: { ...p.config, ...(extra[p.id] ?? {}) } }));
    await stores[0]!.personas.sync({ personas: list, now: T0 });
  }

  /** Every host claims `claimsPerHost` times back to back, all hosts at once; what each claim took. */
  async function round(now: number, limit: number, claimsPerHost = 3): Promise<ClaimedTask[]> {
    const taken = await Promise.all(
      stores.map(async (store, host) => {
        const mine: ClaimedTask[] = [];
        for (let i = 0; i < claimsPerHost; i++) mine.push(...(await store.tasks.claim({ persona: "worker", agentId: `host-${host}`, limit, now })));
        return mine;
      }),
    );
    return taken.flat();
  }

  async function leasedByKey(): Promise<Record<string, number>> {
    const { rows } = await admin.query<{ key: string; n: number }>(
      `SELECT concurrency_key AS key, count(*)::int AS n FROM ${schema}.task_status WHERE status IN ('claimed','in_progress') AND concurrency_key IS NOT NULL GROUP BY 1 ORDER BY 1`,
    );
    return Object.fromEntries(rows.map((r) => [r.key, r.n]));
  }

  it("concurrency keys: racing claims never lease more of a key than its limit, and unkeyed work passes by", async () => {
    await personas({});
    const tasks = [];
    for (let i = 0; i < 24; i++) tasks.push({ persona: "worker", title: `a${i}`, policy: { concurrencyKey: "repo-a" } });
    for (let i = 0; i < 24; i++) tasks.push({ persona: "worker", title: `b${i}`, policy: { concurrencyKey: "repo-b", concurrencyLimit: 3 } });
    for (let i = 0; i < 12; i++) tasks.push({ persona: "worker", title: `free${i}` });
    const { ids } = await stores[0]!.tasks.enqueue({ tasks, now: T0 });
    const free = new Set(ids.slice(48));
    const done = new Set<number>();
    let rounds = 0;
    while (done.size < ids.length && rounds < 60) {
      rounds++;
      const taken = await round(T0, 8);
      // Held until the round ended: a race that overshot a key would show here.
      const leased = await leasedByKey();
      expect(leased["repo-a"] ?? 0).toBeLessThanOrEqual(1);
      expect(leased["repo-b"] ?? 0).toBeLessThanOrEqual(3);
      if (rounds === 1) {
        // The first round: each key full, every unkeyed task taken (the full keys did not crowd them out).
        expect(leased).toEqual({ "repo-a": 1, "repo-b": 3 });
        expect(taken.filter((t) => free.has(t.id))).toHaveLength(12);
      }
      expect(new Set(taken.map((t) => t.id)).size).toBe(taken.length);
      for (const t of taken) {
        expect(done.has(t.id)).toBe(false);
        done.add(t.id);
      }
      // Settled on four hosts at once.
      await Promise.all(
        stores.map((store, host) =>
          store.tasks.settle({
            settlements: taken.filter((_t, i) => i % HOSTS === host).map((t) => ({ kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken })),
            now: T0,
          }),
        ),
      );
    }
    expect(done.size).toBe(ids.length);
    expect(await stores[0]!.tasks.counts()).toEqual({ worker: { completed: ids.length } });
    // repo-a ran one at a time: 24 tasks took at least 24 rounds.
    expect(rounds).toBeGreaterThanOrEqual(24);
    expect(reruns).toEqual([]);
  }, 120_000);

  it("rate limits: racing claims on four hosts take exactly the window's starts, then the next window's; a claim lagging into the window before finds it spent", async () => {
    await personas({ worker: { rateLimit: { starts: 5, perMs: 1_000, key: "acct" } } });
    const tasks = Array.from({ length: 40 }, (_, i) => ({ persona: "worker", title: `t${i}` }));
    await stores[0]!.tasks.enqueue({ tasks, now: T0 });
    const w0 = Math.ceil(T0 / 1_000) * 1_000;
    expect(await round(w0, 3)).toHaveLength(5);
    expect(await round(w0 + 999, 3)).toHaveLength(0);
    expect(await round(w0 + 1_000, 3)).toHaveLength(5);
    // Claims whose now lags into the window before (taken before the turn, or a clock a little behind) find it spent.
    expect(await round(w0 + 999, 3)).toHaveLength(0);
    const starts = await admin.query<{ starts: number }>(`SELECT starts FROM ${schema}.rate_windows ORDER BY window_start`);
    expect(starts.rows).toEqual([{ starts: 5 }, { starts: 5 }]);
    expect(await round(w0 + 2_000, 3)).toHaveLength(5);
    // The window that opened dropped the ones before the previous.
    expect((await admin.query(`SELECT window_start FROM ${schema}.rate_windows ORDER BY 1`)).rows.map((r) => Number(r.window_start))).toEqual([w0 + 1_000, w0 + 2_000]);
    expect(reruns).toEqual([]);
  }, 60_000);

  it("breaker: a half-open breaker gives its one probe to one host however many race for it", async () => {
    await personas({ worker: { breaker: { failures: 1, cooldownMs: 10_000 }, retry: { maxAttempts: 100, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } } });
    const tasks = Array.from({ length: 20 }, (_, i) => ({ persona: "worker", title: `t${i}` }));
    await stores[0]!.tasks.enqueue({ tasks, now: T0 });
    const [first] = await stores[0]!.tasks.claim({ persona: "worker", agentId: "host-0", now: T0 });
    await stores[0]!.tasks.failIfLeased({ taskId: first!.id, leaseToken: first!.leaseToken, error: { message: "boom" }, now: T0, random: () => 0 });
    expect(await round(T0 + 5_000, 3)).toHaveLength(0);
    const probes = await round(T0 + 10_000, 3);
    expect(probes).toHaveLength(1);
    expect((await stores[1]!.economics.breakers())[0]).toMatchObject({ persona: "worker", state: "probing", probeTaskId: probes[0]!.id });
    expect(reruns).toEqual([]);
  }, 60_000);

  it("every gate configured, none reached: four hosts claiming and settling with usage and failures at once never deadlock, and the spend adds up", async () => {
    await personas({
      worker: {
        provider: "acct",
        breaker: { failures: 1_000, failureRate: 0.99, windowMs: 60_000, minAttempts: 1_000 },
        rateLimit: { starts: 100_000, perMs: 1_000, key: "acct" },
        retry: { maxAttempts: 100, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 },
      },
    });
    const now = T0;
    const { ids: [goal] } = await stores[0]!.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "goal", delayMs: 3_600_000 }], now });
    await stores[0]!.economics.setBudget({ scope: "goal", key: String(goal), maxCostUsd: 1_000, now });
    await stores[0]!.economics.setBudget({ scope: "global", key: "", window: "day", maxCostUsd: 1_000, now });
    await stores[0]!.economics.setBudget({ scope: "persona", key: "worker", window: "day", maxTokens: 100_000_000, now });
    const tasks = Array.from({ length: 160 }, (_, i) => ({ persona: "worker", title: `t${i}`, policy: { concurrencyKey: `k${i % 8}`, concurrencyLimit: 100, maxCostUsd: 10 } }));
    const { ids } = await stores[0]!.tasks.enqueue({ tasks, parentId: goal!, now });
    let attempts = 0;
    await Promise.all(
      stores.map(async (store, host) => {
        let idle = 0;
        while (idle < 10) {
          const claimed = await store.tasks.claim({ persona: "worker", agentId: `host-${host}`, limit: 8, leaseMs: 30_000, now });
          if (claimed.length === 0) {
            idle++;
            await new Promise((r) => setTimeout(r, 10));
            continue;
          }
          idle = 0;
          attempts += claimed.length;
          // Every third attempt fails (and is retried at once); each attempt reports $0.01 and 100 tokens.
          const usage = { inputTokens: 100, costUsd: 0.01 };
          await store.tasks.settle({
            settlements: claimed.map((t) =>
              t.id % 3 === 0 && t.attempt === 1
                ? { kind: "fail" as const, taskId: t.id, leaseToken: t.leaseToken, error: { message: "flaky" }, usage, random: () => 0 }
                : { kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken, usage },
            ),
            now,
          });
        }
      }),
    );
    expect((await stores[0]!.tasks.counts()).worker).toEqual({ completed: ids.length });
    const total = await stores[0]!.economics.total();
    expect(total.attempts).toBe(attempts);
    const goalBudget = (await stores[0]!.economics.budgets({ now })).find((b) => b.scope === "goal")!;
    expect(goalBudget).toMatchObject({ exhausted: false, spentTokens: attempts * 100 });
    expect(goalBudget.spentUsd).toBeCloseTo(attempts * 0.01, 6);
    expect(await stores[0]!.economics.breakers()).toEqual([]);
    // Settlements write shared rows (the goal's and the global totals, the breaker) in one order: no deadlock, no rerun.
    expect(reruns).toEqual([]);
  }, 120_000);
});
