import { cpSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { openStore } from "../../src/store/index.js";
import { defaultPostgresMigrationsDir } from "../../src/store/postgres/migrate.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { T0, expectParkedScheduleUpgraded } from "../helpers/store.js";
import { makeTempDir } from "../helpers/tmp.js";

/**
 * PostgreSQL migrations (issue 19): applied at open under an advisory lock, so
 * several supervisors starting at once migrate once; recorded with checksums;
 * refused as on SQLite when a shipped file changed, when the schema is newer or
 * holds another program's tables, and when a read-only open finds no roster there.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres migrations", () => {
  const admin = useAdmin(server);
  let n = 0;

  async function freshSchema(): Promise<{ schema: string; url: string }> {
    const schema = `m${++n}`;
    return { schema, url: await admin.schema(schema) };
  }

  async function refused(open: () => Promise<unknown>): Promise<RosterError> {
    const error = await open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RosterError);
    return error as RosterError;
  }

  const tables = async (schema: string) =>
    (await admin.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1", [schema])).rows.map((r) => r.t);

  it("eight stores opening one empty schema at once migrate it once, and all of them work", async () => {
    const { schema, url } = await freshSchema();
    const stores = await Promise.all(Array.from({ length: 8 }, () => openStore({ path: url, now: T0 })));
    try {
      const applied = await admin.query(`SELECT version, name, length(checksum) AS len FROM ${schema}.schema_migrations ORDER BY version`);
      const files = readdirSync(defaultPostgresMigrationsDir()).filter((f) => f.endsWith(".sql")).sort();
      expect(files[0]).toBe("0001_init.sql");
      expect(applied.rows).toEqual(files.map((name) => ({ version: Number(name.slice(0, 4)), name, len: 64 })));
      await stores[0]!.personas.sync({ personas: [{ id: "p", name: "P", definition: "", config: { adapter: { kind: "echo" } }, sourcePath: null }], now: T0 });
      const ids = await Promise.all(stores.map((s) => s.tasks.enqueue({ tasks: [{ persona: "p", title: "t" }], now: T0 })));
      expect(new Set(ids.map((r) => r.ids[0])).size).toBe(8);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("0017: a schedule an older version parked at Number.MAX_SAFE_INTEGER (no next fire) has none after the upgrade, and the others keep theirs", async () => {
    const { schema, url } = await freshSchema();
    const temp = makeTempDir("roster-pg-migrations-");
    try {
      cpSync(defaultPostgresMigrationsDir(), temp.dir, { recursive: true });
      const upgrade = readdirSync(temp.dir).filter((f) => f.endsWith(".sql") && f >= "0017");
      for (const f of upgrade) rmSync(join(temp.dir, f));
      const old = await openStore({ path: url, now: T0, migrationsDir: temp.dir });
      await old.personas.sync({ personas: [{ id: "p", name: "P", definition: "d", config: { adapter: { kind: "echo" } }, sourcePath: null }], now: T0 });
      await old.close();
      const insert = `INSERT INTO ${schema}.schedules (id, cron, task, next_fire_at, created_at, updated_at) VALUES ($1, '0 0 1 1 *', '{"persona":"p","title":"t"}', $2, 0, 0)`;
      await admin.query(insert, ["parked", Number.MAX_SAFE_INTEGER]);
      await admin.query(insert, ["live", T0 + 60_000]);
      const store = await openStore({ path: url, now: T0 });
      try {
        await expectParkedScheduleUpgraded(store);
      } finally {
        await store.close();
      }
    } finally {
      temp.cleanup();
    }
  });

  it("a shipped migration edited after it was applied is refused with MIGRATION_CHANGED, and nothing is written", async () => {
    const { schema, url } = await freshSchema();
    await (await openStore({ path: url, now: T0 })).close();
    const temp = makeTempDir("roster-pg-migrations-");
    try {
      cpSync(defaultPostgresMigrationsDir(), temp.dir, { recursive: true });
      writeFileSync(join(temp.dir, "0001_init.sql"), "-- edited\n", { flag: "a" });
      writeFileSync(join(temp.dir, "0999_more.sql"), "CREATE TABLE more (x int);\n");
      const error = await refused(() => openStore({ path: url, now: T0, migrationsDir: temp.dir }));
      expect(error.code).toBe("MIGRATION_CHANGED");
      expect(error.message).toContain("0001_init.sql was changed after it was applied");
      expect(await tables(schema)).not.toContain("more");
    } finally {
      temp.cleanup();
    }
  });

  it("a schema newer than this roster is refused with DATABASE_TOO_NEW", async () => {
    const { schema, url } = await freshSchema();
    await (await openStore({ path: url, now: T0 })).close();
    await admin.query(`INSERT INTO ${schema}.schema_migrations VALUES (9999, '9999_future.sql', 'x', 0)`);
    expect((await refused(() => openStore({ path: url, now: T0 }))).code).toBe("DATABASE_TOO_NEW");
  });

  it("a schema holding another program's tables is refused with DATABASE_INVALID and left as it was", async () => {
    const { schema, url } = await freshSchema();
    await admin.query(`CREATE TABLE ${schema}.orders (id int)`);
    const error = await refused(() => openStore({ path: url, now: T0 }));
    expect(error.code).toBe("DATABASE_INVALID");
    expect(error.message).toContain("orders");
    expect(await tables(schema)).toEqual(["orders"]);
  });

  it("a read-only store reads and cannot write (DATABASE_READONLY), and nothing is written", async () => {
    const { schema, url } = await freshSchema();
    await (await openStore({ path: url, now: T0 })).close();
    const store = await openStore({ path: url, now: T0, readonly: true });
    try {
      expect(await store.personas.list()).toEqual([]);
      const error = await refused(() => store.personas.sync({ personas: [{ id: "p", name: "P", definition: "", config: {}, sourcePath: null }], now: T0 }));
      expect(error.code).toBe("DATABASE_READONLY");
      expect((await admin.query(`SELECT count(*)::int AS n FROM ${schema}.personas`)).rows[0].n).toBe(0);
    } finally {
      await store.close();
    }
  });

  it("a read-only open of an empty schema is refused and creates nothing", async () => {
    const { schema, url } = await freshSchema();
    const error = await refused(() => openStore({ path: url, now: T0, readonly: true }));
    expect(error.code).toBe("DATABASE_INVALID");
    expect(error.message).toMatch(/run `roster init` first/);
    expect(await tables(schema)).toEqual([]);
  });
});
