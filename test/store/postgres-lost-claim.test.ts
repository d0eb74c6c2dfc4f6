import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { RosterError } from "../../src/errors.js";
import { openStore, type ClaimedTask, type Store, type TaskDetail } from "../../src/store/index.js";
import { until } from "../mcp/helpers.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { startCutProxy, type CutProxy } from "../helpers/tcp-proxy.js";

/**
 * A claim whose answer was lost (issue 19, deliverable 5; docs/ARCHITECTURE.md rule 17): the
 * server committed it, the connection broke before its answer arrived, and the claimant got
 * DATABASE_IO without learning which tasks it leased. The store remembers the claim's lease
 * token and, once a later write of it succeeds, releases every row still leased under that
 * token, uncounted and fenced by the token, so another host claims them at once instead of
 * after a lease and a reap (which would count a lost lease the task did not cause).
 *
 * Host A is a real store reaching PostgreSQL through a TCP proxy that lets the claim through
 * and resets the connection once the server has answered it whole (its transaction over);
 * host B reaches the server directly.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: a claim whose answer was lost", () => {
  const admin = useAdmin(server);
  let proxy: CutProxy;
  let url: string;
  let hostB: Store;
  let hostA: Store | null = null;
  let schema = 0;
  beforeAll(async () => {
    const target = new URL(server.url());
    proxy = await startCutProxy(target.hostname, Number(target.port));
  });
  afterEach(async () => {
    await hostA?.close();
    hostA = null;
    await hostB?.close();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  /** A fresh schema; host A through the proxy (with its monotonic clock given, for the reaper), host B directly. */
  async function hosts(): Promise<{ a: Store; b: Store; table: string }> {
    const name = `lost_claim_${++schema}`;
    url = await admin.schema(name);
    hostB = await openStore({ path: url });
    await syncTestPersonas(hostB, systemClock.now());
    hostA = await openStore({ path: proxy.url(url) });
    return { a: hostA, b: hostB, table: `${name}.task_status` };
  }

  async function enqueue(store: Store, n: number): Promise<number[]> {
    return (await store.tasks.enqueue({ tasks: Array.from({ length: n }, (_, i) => ({ persona: "worker", title: `task ${i}` })), now: systemClock.now() })).ids;
  }

  /** A's claim of `limit` worker tasks, its answer lost after the server answered `marker`'s statement: it fails with DATABASE_IO. */
  async function lostClaim(a: Store, marker: string, params: { limit: number; leaseMs?: number }): Promise<RosterError> {
    const lost = proxy.loseAnswer(marker);
    const outcome = await a.tasks.claim({ persona: "worker", agentId: "host-a", now: systemClock.now(), ...params }).then(
      (claimed: ClaimedTask[]) => claimed,
      (error: unknown) => error,
    );
    await lost;
    if (!(outcome instanceof RosterError)) throw new Error(`the claim whose answer was lost returned ${JSON.stringify(outcome)}`);
    expect(outcome.code).toBe("DATABASE_IO");
    return outcome;
  }

  async function leasesLost(table: string, ids: number[]): Promise<number[]> {
    return (await admin.query<{ leases_lost: number }>(`SELECT leases_lost FROM ${table} WHERE task_id = ANY($1::bigint[]) ORDER BY task_id`, [ids])).rows.map((r) => Number(r.leases_lost));
  }

  const tasksOf = (store: Store, ids: number[]): Promise<TaskDetail[]> => Promise.all(ids.map((taskId) => store.tasks.get({ taskId })));

  /** The tasks A leased without knowing it are back, uncounted, each with a release saying why; B claims them at once. */
  async function expectGivenBack(b: Store, table: string, ids: number[]): Promise<void> {
    await until(async () => (await tasksOf(b, ids)).every((t) => t.status === "pending"), "host A's lost claim released", 10_000);
    for (const task of await tasksOf(b, ids)) {
      const types = task.events.map((e) => e.type);
      expect(task.attempts, `task ${task.id}: ${types.join(", ")}`).toBe(0);
      expect(task.assignedAgentId).toBeNull();
      expect(types).toEqual(["task:enqueued", "task:claimed", "task:released"]);
      expect(task.events[1]).toMatchObject({ agentId: "host-a", attempt: 1 });
      const released = task.events[2]!;
      expect(released).toMatchObject({ agentId: "host-a", attempt: 1 });
      expect(String((released.data as { reason?: unknown }).reason)).toMatch(/answer was lost/);
    }
    expect(await leasesLost(table, ids)).toEqual(ids.map(() => 0));
    // No lease period to wait for: B takes them now, each as its first counted attempt.
    const taken = await b.tasks.claim({ persona: "worker", agentId: "host-b", now: systemClock.now(), limit: ids.length + 1 });
    expect(taken.map((t) => t.id).sort((x, y) => x - y)).toEqual(ids);
    expect(taken.map((t) => t.attempt)).toEqual(ids.map(() => 1));
  }

  it("releases, uncounted, the tasks a one-round-trip claim leased once a later write of the store succeeds", async () => {
    const { a, b, table } = await hosts();
    const ids = await enqueue(b, 3);
    await lostClaim(a, "roster_claim(", { limit: 3, leaseMs: 30_000 });
    // The server did lease them, to A, which does not know it.
    expect((await tasksOf(b, ids)).map((t) => [t.status, t.assignedAgentId])).toEqual(ids.map(() => ["claimed", "host-a"]));
    // A's next write (a registration, as a supervisor's renewal) succeeds on a new connection.
    await a.agents.register({ id: "host-a", name: "host a", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: systemClock.now() });
    await expectGivenBack(b, table, ids);
  });

  it("releases the tasks a transactional claim leased when the answer to its COMMIT was lost", async () => {
    const { a, b, table } = await hosts();
    const ids = await enqueue(b, 2);
    // Without leaseMs the claim reads the persona's gates and lease in a transaction of its own.
    await lostClaim(a, "COMMIT", { limit: 2 });
    expect((await tasksOf(b, ids)).map((t) => [t.status, t.assignedAgentId])).toEqual(ids.map(() => ["claimed", "host-a"]));
    // A's next write: an enqueue (another persona's, so B's claim below sees only the released tasks).
    await a.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "after the cut" }], now: systemClock.now() });
    await expectGivenBack(b, table, ids);
  });

  it("leaves alone a task claimed again in between, by another host or by the same one: the release is fenced by the lost claim's lease token", async () => {
    const { a, b, table } = await hosts();
    const ids = await enqueue(b, 3);
    const [first, second, third] = ids as [number, number, number];
    await lostClaim(a, "roster_claim(", { limit: 3, leaseMs: 30_000 });
    // Before A writes again, an operator cancels and retries the first two (their leases end), and host C
    // claims the first afresh: its row is leased under C's token now.
    for (const taskId of [first, second]) {
      await b.tasks.cancel({ taskId, reason: "operator", now: systemClock.now() });
      await b.tasks.retry({ taskId, now: systemClock.now() });
    }
    const byC = await b.tasks.claimById({ taskId: first, agentId: "host-c", leaseMs: 30_000, now: systemClock.now() });
    expect(byC?.id).toBe(first);
    // A's next write claims the second itself, under a new token of the same agent.
    const byA = await a.tasks.claimById({ taskId: second, agentId: "host-a", leaseMs: 30_000, now: systemClock.now() });
    expect(byA?.id).toBe(second);
    await until(async () => (await b.tasks.get({ taskId: third })).status === "pending", "host A's lost claim of the third task released", 10_000);
    // Both new leases held: same holder, same token, nothing released, and each completes.
    for (const [taskId, lease, agent] of [[first, byC!, "host-c"], [second, byA!, "host-a"]] as const) {
      const held = await b.tasks.get({ taskId });
      expect(held, `task ${taskId}`).toMatchObject({ status: "claimed", assignedAgentId: agent });
      expect((await admin.query<{ lease_token: string }>(`SELECT lease_token FROM ${table} WHERE task_id = $1`, [taskId])).rows[0]?.lease_token).toBe(lease.leaseToken);
      expect(held.events.filter((e) => e.type === "task:released"), `task ${taskId}`).toEqual([]);
      expect(await b.tasks.completeIfLeased({ taskId, leaseToken: lease.leaseToken, result: { ok: true }, now: systemClock.now() })).toMatchObject({ ok: true });
    }
    const released = await b.tasks.get({ taskId: third });
    expect(released.events.map((e) => e.type)).toEqual(["task:enqueued", "task:claimed", "task:released"]);
    expect(released.attempts).toBe(0);
    expect(await leasesLost(table, ids)).toEqual([0, 0, 0]);
  });

  it("waits, before releasing, until the session the claim went on can no longer commit: a claim the server finishes after its client gave up is released too", async () => {
    const releases: string[] = [];
    const { b, table } = await hosts();
    await hostA!.close();
    // Host A again, counting its release transactions.
    hostA = await openStore({ path: proxy.url(url), onTransaction: (name) => void (name === "tasks.releaseLostClaims" && releases.push(name)) });
    const a = hostA;
    const ids = await enqueue(b, 2);
    // Another session holds the persona's claim lock (rule 15), so A's claim waits for it on the server.
    const holder = new pg.Client({ connectionString: server.url() });
    await holder.connect();
    await holder.query("BEGIN");
    try {
      await holder.query("SELECT pg_advisory_xact_lock(hashtextextended('roster:persona:worker', 0))");
      const abandoned = proxy.abandon("roster_claim(");
      const outcome = await a.tasks.claim({ persona: "worker", agentId: "host-a", now: systemClock.now(), limit: 2, leaseMs: 30_000 }).catch((error: unknown) => error);
      await abandoned;
      expect((outcome as RosterError).code).toBe("DATABASE_IO");
      await until(
        async () => ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%roster_claim(%'")).rowCount ?? 0) > 0,
        "A's claim waiting on the server",
      );
      // A writes again: its release runs, and finds the claim's session still running it.
      await a.agents.register({ id: "host-a", name: "host a", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: systemClock.now() });
      await until(async () => releases.length > 0, "A's first release");
    } finally {
      await holder.query("COMMIT");
      await holder.end();
    }
    // The claim goes on and commits on the server, unknown to A.
    await until(async () => (await tasksOf(b, ids)).every((t) => t.status === "claimed"), "the abandoned claim committed");
    await until(async () => ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%roster_claim(%' AND state <> 'idle'")).rowCount ?? 0) === 0, "its session idle");
    await a.agents.register({ id: "host-a", name: "host a", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: systemClock.now() });
    await expectGivenBack(b, table, ids);
  });

  it("releases nothing for a claim that never reached the server", async () => {
    const { a, b } = await hosts();
    const ids = await enqueue(b, 2);
    proxy.cut("reset");
    const outcome = await a.tasks.claim({ persona: "worker", agentId: "host-a", now: systemClock.now(), limit: 2, leaseMs: 30_000 }).catch((error: unknown) => error);
    proxy.restore();
    expect(outcome).toBeInstanceOf(RosterError);
    expect((outcome as RosterError).code).toBe("DATABASE_IO");
    await a.agents.register({ id: "host-a", name: "host a", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: systemClock.now() });
    // The store's background release (if any) has run once A's next write is back: a later write finds it done.
    await enqueue(a, 1);
    for (const task of await tasksOf(b, ids)) expect(task.events.map((e) => e.type)).toEqual(["task:enqueued"]);
  });
});
