import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * tasks.settleAndClaim on SQLite (the supervisor's cycle in one transaction): the
 * settlements are recorded first, then the claims, each with its audit row and fenced
 * as settle() and claim() alone are, in one commit; events after it.
 */
let temp: TempDir | null = null;
let store: Store | null = null;
afterEach(async () => {
  await store?.close();
  store = null;
  temp?.cleanup();
  temp = null;
});

async function open(): Promise<{ store: Store; transactions: string[] }> {
  temp = makeTempDir("roster-settle-claim-");
  const transactions: string[] = [];
  store = await openStore({ path: temp.path("roster.db"), onTransaction: (name) => transactions.push(name) });
  await syncTestPersonas(store, T0);
  transactions.length = 0;
  return { store, transactions };
}

describe("tasks.settleAndClaim (SQLite)", () => {
  it("records the settlements and makes the claims in one transaction, the claims seeing the room the settlements freed", async () => {
    const { store, transactions } = await open();
    // reviewer: concurrency 2, held by the store across claimants (docs/ARCHITECTURE.md rule 15).
    const { ids } = await store.tasks.enqueue({ tasks: ["a", "b", "c", "d"].map((title) => ({ persona: "reviewer", title })), now: T0 });
    const [a, b] = await store.tasks.claim({ persona: "reviewer", agentId: "sup", limit: 4, now: T0 });
    expect([a!.id, b!.id]).toEqual([ids[0], ids[1]]);
    const completed: number[] = [];
    const claimedEvents: number[][] = [];
    store.events.on("task:completed", (e) => completed.push(e.taskId));
    store.events.on("task:claimed", (e) => claimedEvents.push(e.tasks.map((t) => t.id)));
    transactions.length = 0;
    const out = await store.tasks.settleAndClaim!({
      settlements: [
        { kind: "complete", taskId: a!.id, leaseToken: a!.leaseToken, resultJson: '{"n":1}' },
        { kind: "fail", taskId: b!.id, leaseToken: b!.leaseToken, error: { code: "ADAPTER_FAILED", message: "no", retryable: false } },
      ],
      now: T0 + 5,
      claims: [{ persona: "reviewer", agentId: "sup", limit: 4, now: T0 + 5 }],
    });
    expect(transactions).toEqual(["tasks.settle+claim"]);
    expect(out.results.map((r) => (r.ok ? r.outcome : r.code))).toEqual(["completed", "failed"]);
    // Both slots were freed by the settlements recorded before the claim in the same transaction.
    expect(out.claimed.map((list) => list.map((t) => t.id))).toEqual([[ids[2], ids[3]]]);
    expect(completed).toEqual([a!.id]);
    expect(claimedEvents).toEqual([[ids[2], ids[3]]]);
    const tasks = await Promise.all(ids.map((taskId) => store.tasks.get({ taskId })));
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual([
      ["completed", 1],
      ["failed", 1],
      ["claimed", 1],
      ["claimed", 1],
    ]);
    expect(tasks[0]!.result).toEqual({ n: 1 });
    // Each transition wrote its audit row (docs/ARCHITECTURE.md rule 9).
    const types = async (taskId: number) => (await store.tasks.events({ taskId })).map((e) => e.type);
    expect(await types(ids[0]!)).toEqual(["task:enqueued", "task:claimed", "task:completed"]);
    expect(await types(ids[1]!)).toEqual(["task:enqueued", "task:claimed", "task:failed"]);
    expect(await types(ids[2]!)).toEqual(["task:enqueued", "task:claimed"]);
    // The claimed leases are fenced like any claim's: a stale token is refused.
    const [c] = out.claimed[0]!;
    expect(await store.tasks.completeIfLeased({ taskId: c!.id, leaseToken: a!.leaseToken, result: 1, now: T0 + 6 })).toEqual({ ok: false, code: "LEASE_LOST" });
    expect((await store.tasks.completeIfLeased({ taskId: c!.id, leaseToken: c!.leaseToken, result: 1, now: T0 + 6 })).ok).toBe(true);
  });

  it("refuses a settlement whose lease is gone (LEASE_LOST, nothing written for it) and still claims", async () => {
    const { store } = await open();
    const { ids } = await store.tasks.enqueue({ tasks: ["a", "b"].map((title) => ({ persona: "worker", title })), now: T0 });
    const [a] = await store.tasks.claim({ persona: "worker", agentId: "sup", limit: 1, now: T0 });
    const out = await store.tasks.settleAndClaim!({
      settlements: [{ kind: "complete", taskId: a!.id, leaseToken: "not-the-token", resultJson: "1" }],
      now: T0 + 1,
      claims: [{ persona: "worker", agentId: "sup", limit: 5, now: T0 + 1 }],
    });
    expect(out.results).toEqual([{ ok: false, code: "LEASE_LOST" }]);
    expect(out.claimed.map((list) => list.map((t) => t.id))).toEqual([[ids[1]]]);
    expect((await store.tasks.get({ taskId: a!.id })).status).toBe("claimed");
  });

  it("a claim short of room waits for a lease that ends after it: the settlements before it in its transaction do not reopen it (claim:reopened)", async () => {
    const { store } = await open();
    const { ids } = await store.tasks.enqueue({ tasks: ["a", "b", "c", "d"].map((title) => ({ persona: "reviewer", title })), now: T0 });
    // Another claimant (an MCP agent in this process) holds one of reviewer's two places.
    const [held] = await store.tasks.claim({ persona: "reviewer", agentId: "mcp", limit: 1, now: T0 });
    const [mine] = await store.tasks.claim({ persona: "reviewer", agentId: "sup", limit: 1, now: T0 });
    const reopened: Array<string[] | null> = [];
    store.events.on("claim:reopened", (e) => reopened.push(e.personas));
    const out = await store.tasks.settleAndClaim!({
      settlements: [{ kind: "complete", taskId: mine!.id, leaseToken: mine!.leaseToken, resultJson: "1" }],
      now: T0 + 1,
      claims: [{ persona: "reviewer", agentId: "sup", limit: 2, now: T0 + 1 }],
    });
    // One place was free after the settlement: one task, short of the two asked, for want of room.
    expect(out.claimed.map((list) => list.map((t) => t.id))).toEqual([[ids[2]]]);
    expect(reopened).toEqual([]);
    // The other claimant's settle frees the room the claim waited for.
    await store.tasks.completeIfLeased({ taskId: held!.id, leaseToken: held!.leaseToken, result: 1, now: T0 + 2 });
    expect(reopened).toEqual([["reviewer"]]);
    expect(ids[3]).toBeDefined();
  });
});
