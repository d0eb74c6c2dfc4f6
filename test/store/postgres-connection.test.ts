import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { openStore } from "../../src/store/index.js";
import { PG_IDLE_IN_TRANSACTION_MS, PG_QUERY_TIMEOUT_MS } from "../../src/store/postgres/connection.js";
import { PostgresStore } from "../../src/store/postgres/store.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * Losing connections (issue 19, in part): when the server ends a store's connections
 * (a restart, a failover, an administrator), the next call fails with a roster error
 * naming the cause and the URL without its password, and the store reconnects by
 * itself for the calls after; a lease taken before keeps being fenced as usual.
 * Every session carries the server-side bounds (SESSION_SETTINGS), each below the
 * client's own statement bound; test/store/postgres-zombie-locks.test.ts shows a cut-off
 * host's locks going.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: lost connections", () => {
  const admin = useAdmin(server);
  let c1 = "";
  beforeAll(async () => {
    c1 = await admin.schema("c1");
  });

  it("a call on a killed connection fails with a coded error naming the URL without its password; the next calls reconnect and the lease still holds", async () => {
    const url = new URL(c1);
    url.password = "not-printed";
    const store = await openStore({ path: url.toString(), now: T0 });
    try {
      await syncTestPersonas(store, T0);
      await store.agents.register({ id: "host-a", name: "a", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: T0 });
      const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "worker", title: "t" }], now: T0 });
      const [task] = await store.tasks.claim({ persona: "worker", agentId: "host-a", now: T0 });
      const killed = await admin.query<{ ok: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'roster' AND pid <> pg_backend_pid()",
      );
      expect(killed.rows.length).toBeGreaterThanOrEqual(1);
      // Every pooled connection is gone: a call that meets one fails (DATABASE_IO, "terminating connection due to
      // administrator command"); the pool drops it and the next calls open new ones.
      const errors: RosterError[] = [];
      for (let i = 0; i < 20; i++) {
        try {
          await store.tasks.get({ taskId: ids[0]! });
          break;
        } catch (error) {
          expect(error).toBeInstanceOf(RosterError);
          errors.push(error as RosterError);
        }
      }
      for (const error of errors) {
        expect(["DATABASE_IO", "DATABASE_BUSY"]).toContain(error.code);
        expect(error.message).not.toContain("not-printed");
      }
      expect(errors.length).toBeLessThan(20);
      const renewed = await store.agents.heartbeat({ agentId: "host-a", now: T0 + 1_000, leases: [{ taskId: task!.id, leaseToken: task!.leaseToken }] });
      expect(renewed).toMatchObject({ agentActive: true, lost: [] });
      const done = await store.tasks.completeIfLeased({ taskId: task!.id, leaseToken: task!.leaseToken, now: T0 + 2_000 });
      expect(done.ok).toBe(true);
      expect((await store.tasks.get({ taskId: ids[0]! })).status).toBe("completed");
    } finally {
      await store.close();
    }
  });

  it("no connection slot left (SQLSTATE 53300: max_connections or the role's limit) is DATABASE_IO, as a server that is down, not a raw driver error", async () => {
    const role = `roster_limited_${process.pid}`;
    await admin.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 1`);
    await admin.query(`GRANT ALL ON SCHEMA c1 TO ${role}`);
    const url = new URL(c1);
    url.username = role;
    url.password = "";
    const holder = new pg.Client({ connectionString: url.toString() });
    await holder.connect();
    try {
      const opened = openStore({ path: url.toString(), now: T0 });
      await expect(opened).rejects.toMatchObject({ code: "DATABASE_IO", message: expect.stringMatching(/too many connections/) });
    } finally {
      await holder.end();
      await admin.query(`REVOKE ALL ON SCHEMA c1 FROM ${role}`);
      await admin.query(`DROP ROLE ${role}`);
    }
  });

  it("a store's sessions carry the server-side bounds, each below the client's own statement bound, and the connection that ran the migrations has them back", async () => {
    const url = new URL(c1);
    // One connection: the one the migrations ran on (their lock and statement bounds lifted, then reset).
    const store = await PostgresStore.open({ path: url.toString(), now: T0, poolMax: 1 });
    try {
      await store.tasks.counts();
      const pool = (store as unknown as { pool: pg.Pool }).pool;
      const rows = (
        await pool.query<{ name: string; ms: string }>(
          `SELECT name, setting AS ms FROM pg_settings
           WHERE name IN ('idle_in_transaction_session_timeout','client_connection_check_interval','lock_timeout','statement_timeout','tcp_user_timeout')`,
        )
      ).rows;
      const ms = Object.fromEntries(rows.map((r) => [r.name, Number(r.ms)]));
      expect(ms).toEqual({
        idle_in_transaction_session_timeout: PG_IDLE_IN_TRANSACTION_MS,
        client_connection_check_interval: 2_000,
        lock_timeout: 10_000,
        statement_timeout: 12_000,
        tcp_user_timeout: PG_IDLE_IN_TRANSACTION_MS,
      });
      // The server ends a statement, its lock wait or an idle transaction before the client gives up on it.
      for (const [name, value] of Object.entries(ms)) expect(value, name).toBeLessThan(PG_QUERY_TIMEOUT_MS);
    } finally {
      await store.close();
    }
  });
});
