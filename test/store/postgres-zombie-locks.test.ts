import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { openStore, type Store } from "../../src/store/index.js";
import { newPool, PG_QUERY_TIMEOUT_MS } from "../../src/store/postgres/connection.js";
import { useAdmin, usePostgres, withSchema } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { startCutProxy, type CutProxy } from "../helpers/tcp-proxy.js";

/**
 * A host cut off in the middle of a transaction (issue 19, deliverable 5; docs/postgres.md,
 * "Losing the database"). Its session sits "idle in transaction" on the server, holding the
 * row locks it took, until the server gives up on it. Every other host's write to those rows
 * waits behind it, and each of their statements has a bound (PG_QUERY_TIMEOUT_MS) after which
 * a healthy host reads the wait as a lost connection. So the server must end the vanished
 * session well inside that bound: a healthy host's write waits, then succeeds.
 *
 * The cut-off session is a real roster connection (the store's own pool settings, through a
 * TCP proxy whose link is cut: bytes stop, nothing is refused, as with a pulled cable).
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: the row locks of a host cut off mid-transaction", () => {
  const admin = useAdmin(server);
  let proxy: CutProxy;
  let store: Store;
  beforeAll(async () => {
    store = await openStore({ path: await admin.schema("zombie") });
    await syncTestPersonas(store, Date.now());
    const target = new URL(server.url());
    proxy = await startCutProxy(target.hostname, Number(target.port));
  });
  afterAll(async () => {
    await store?.close();
    await proxy?.close();
  });

  it("are given up by the server well inside a healthy host's statement bound: the healthy host's write waits, then succeeds", async () => {
    const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "worker", title: "locked by a host about to be cut off" }], now: Date.now() });
    const taskId = ids[0]!;
    const zombie = newPool(withSchema(proxy.url(server.url()), "zombie"), 1, false, { bounded: true });
    zombie.on("error", () => {});
    const client = await zombie.connect();
    client.on("error", () => {});
    try {
      await client.query("BEGIN");
      await client.query("SELECT task_id FROM task_status WHERE task_id = $1 FOR UPDATE", [taskId]);
      const zombiePid = Number((await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
      proxy.cut();

      // The healthy host cancels the task: its UPDATE of the row waits on the cut-off session's lock.
      const started = Date.now();
      let outcome: unknown;
      try {
        outcome = await store.tasks.cancel({ taskId, reason: "the healthy host's write", now: Date.now() });
      } catch (error) {
        outcome = error;
      }
      const waited = Date.now() - started;
      if (outcome instanceof RosterError) throw new Error(`the healthy host's write failed after ${waited} ms behind the cut-off session's lock: ${outcome.code}: ${outcome.message}`);
      expect((await store.tasks.get({ taskId })).status).toBe("cancelled");
      // It did wait (the lock was real), and less than its statement bound.
      expect(waited).toBeGreaterThan(500);
      expect(waited).toBeLessThan(PG_QUERY_TIMEOUT_MS);
      // The server ended the cut-off session (not merely its transaction).
      const alive = await admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [zombiePid]);
      expect(alive.rowCount).toBe(0);
    } finally {
      client.release(true);
      await zombie.end().catch(() => undefined);
    }
  }, 60_000);
});
