import pg from "pg";
import { describe, expect, it } from "vitest";
import { usePostgres } from "../helpers/postgres.js";

const server = await usePostgres();

describe.skipIf(!server.available)("the PostgreSQL test harness", () => {
  it("gives this file a database of its own on a server that accepts writes", async () => {
    const client = new pg.Client({ connectionString: server.url() });
    await client.connect();
    try {
      const { rows } = await client.query<{ db: string; v: string }>("SELECT current_database() AS db, current_setting('server_version_num') AS v");
      expect(rows[0]!.db).toMatch(/^roster_test_\d+_[0-9a-f]{8}$/);
      expect(Number(rows[0]!.v)).toBeGreaterThanOrEqual(120000);
      await client.query("CREATE TABLE t (x int)");
      await client.query("INSERT INTO t VALUES (1)");
      expect((await client.query("SELECT count(*)::int AS n FROM t")).rows[0].n).toBe(1);
    } finally {
      await client.end();
    }
  });

  it("hands out a fresh database each time it is asked", async () => {
    const other = await server.server().newDatabase();
    expect(other).not.toBe(server.url());
    const client = new pg.Client({ connectionString: other });
    await client.connect();
    try {
      expect((await client.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
  });
});
