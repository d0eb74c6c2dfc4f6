import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import { appendFileSync, cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { openStore } from "../../src/store/index.js";
import { sqlitePragma } from "../../src/store/sqlite/introspect.js";
import { runMigrations } from "../../src/store/sqlite/migrate.js";
import { WAL_AUTOCHECKPOINT_PAGES } from "../../src/store/sqlite/open.js";
import { T0, expectParkedScheduleUpgraded } from "../helpers/store.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * Migrations and connection settings (SQLite-specific).
 *
 * The migrated schema is compared with test/store/schema.snapshot.sql. After adding
 * a migration, regenerate it with:
 *   UPDATE_SNAPSHOT=1 npx vitest run test/store/migrations.test.ts
 * and commit the new snapshot with the migration.
 */
const HERE = dirname(fileURLToPath(import.meta.url));
const MIGRATIONS = join(HERE, "..", "..", "migrations");
const SNAPSHOT = join(HERE, "schema.snapshot.sql");

function schemaOf(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db
      .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND sql IS NOT NULL ORDER BY type, name")
      .all() as Array<{ type: string; name: string; sql: string }>;
    return `${rows.map((r) => `-- ${r.type} ${r.name}\n${r.sql};`).join("\n\n")}\n`;
  } finally {
    db.close();
  }
}

function appliedRows(path: string): Array<{ version: number; name: string; checksum: string; applied_at: number }> {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version").all() as never;
  } finally {
    db.close();
  }
}

async function refusal(action: () => Promise<unknown>): Promise<RosterError> {
  try {
    await action();
  } catch (error) {
    expect(error).toBeInstanceOf(RosterError);
    return error as RosterError;
  }
  throw new Error("expected the open to be refused");
}

describe("migrations", () => {
  let temp: TempDir;
  let dbPath: string;
  let dir: string;

  beforeEach(() => {
    temp = makeTempDir("roster-migrations-");
    dbPath = temp.path("roster.db");
    dir = temp.path("migrations");
    cpSync(MIGRATIONS, dir, { recursive: true });
  });
  afterEach(() => temp.cleanup());

  it("a fresh database gets every migration, each recorded with its checksum", async () => {
    const store = await openStore({ path: dbPath, migrationsDir: dir, now: T0 });
    await store.close();
    const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
    expect(files.length).toBeGreaterThan(0);
    expect(appliedRows(dbPath)).toEqual(
      files.map((name) => ({
        version: Number(name.slice(0, 4)),
        name,
        checksum: createHash("sha256").update(readFileSync(join(dir, name), "utf8")).digest("hex"),
        applied_at: T0,
      })),
    );
  });

  it("reopening a migrated database is a no-op", async () => {
    await (await openStore({ path: dbPath, migrationsDir: dir, now: T0 })).close();
    const schema = schemaOf(dbPath);
    const applied = appliedRows(dbPath);
    await (await openStore({ path: dbPath, migrationsDir: dir, now: T0 + 60_000 })).close();
    expect(appliedRows(dbPath)).toEqual(applied);
    expect(schemaOf(dbPath)).toBe(schema);
  });

  it("a migration added later is applied on the next open, forward only", async () => {
    await (await openStore({ path: dbPath, migrationsDir: dir, now: T0 })).close();
    writeFileSync(join(dir, "9001_add_notes.sql"), "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL) STRICT;\n");
    await (await openStore({ path: dbPath, migrationsDir: dir, now: T0 + 1 })).close();
    expect(appliedRows(dbPath).at(-1)).toMatchObject({ version: 9001, name: "9001_add_notes.sql", applied_at: T0 + 1 });
    expect(schemaOf(dbPath)).toContain("CREATE TABLE notes");
  });

  it("an applied migration whose file was edited is refused with MIGRATION_CHANGED", async () => {
    await (await openStore({ path: dbPath, migrationsDir: dir, now: T0 })).close();
    appendFileSync(join(dir, "0001_init.sql"), "\n-- an innocent-looking edit\n");
    const error = await refusal(() => openStore({ path: dbPath, migrationsDir: dir, now: T0 }));
    expect(error.code).toBe("MIGRATION_CHANGED");
    expect(error.message).toContain("0001_init.sql");
  });

  it("a database newer than the code is refused with DATABASE_TOO_NEW", async () => {
    writeFileSync(join(dir, "9001_future.sql"), "CREATE TABLE future (id INTEGER PRIMARY KEY) STRICT;\n");
    await (await openStore({ path: dbPath, migrationsDir: dir, now: T0 })).close();
    const error = await refusal(() => openStore({ path: dbPath, migrationsDir: MIGRATIONS, now: T0 }));
    expect(error.code).toBe("DATABASE_TOO_NEW");
    expect(error.message).toContain("9001");
  });

  it("a file that is not a database is refused with DATABASE_INVALID and left unchanged", async () => {
    const junk = Buffer.from("these are my notes, not a database\n".repeat(200));
    writeFileSync(dbPath, junk);
    const error = await refusal(() => openStore({ path: dbPath, migrationsDir: dir, now: T0 }));
    expect(error.code).toBe("DATABASE_INVALID");
    expect(error.message).toContain(dbPath);
    expect(readFileSync(dbPath).equals(junk)).toBe(true);
    expect(existsSync(`${dbPath}-wal`)).toBe(false);
  });

  it("a SQLite database of another program is refused with DATABASE_INVALID and left unchanged", async () => {
    const other = new Database(dbPath);
    other.exec("CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT)");
    other.close();
    const before = readFileSync(dbPath);
    const error = await refusal(() => openStore({ path: dbPath, migrationsDir: dir, now: T0 }));
    expect(error.code).toBe("DATABASE_INVALID");
    expect(readFileSync(dbPath).equals(before)).toBe(true);
  });

  it("0013: a schedule an older version parked at Number.MAX_SAFE_INTEGER (no next fire) has none after the upgrade, and the others keep theirs", async () => {
    const upgrade = readdirSync(dir).filter((f) => f.endsWith(".sql") && f >= "0013");
    const held = temp.path("later");
    cpSync(dir, held, { recursive: true });
    for (const f of upgrade) rmSync(join(dir, f));
    // The schema as that roster left it (this code's store needs later tables to open).
    const raw = new Database(dbPath);
    runMigrations(raw, { dir, readonly: false, now: T0, path: dbPath });
    raw.prepare("INSERT INTO personas (id, name, definition, config, created_at, updated_at) VALUES ('p', 'P', 'd', '{\"adapter\":{\"kind\":\"echo\"}}', 0, 0)").run();
    const insert = raw.prepare("INSERT INTO schedules (id, cron, task, next_fire_at, created_at, updated_at) VALUES (?, '0 0 1 1 *', '{\"persona\":\"p\",\"title\":\"t\"}', ?, 0, 0)");
    insert.run("parked", Number.MAX_SAFE_INTEGER);
    insert.run("live", T0 + 60_000);
    raw.close();
    for (const f of upgrade) cpSync(join(held, f), join(dir, f));
    const store = await openStore({ path: dbPath, migrationsDir: dir, now: T0 });
    try {
      await expectParkedScheduleUpgraded(store);
    } finally {
      await store.close();
    }
  });

  it("a database made before identities gets one, and its tasks so far are marked as keeping the old names", async () => {
    const later = readdirSync(dir).filter((f) => f.endsWith(".sql") && Number(f.slice(0, 4)) >= 14);
    const held = temp.path("held");
    cpSync(dir, held, { recursive: true });
    for (const f of later) rmSync(join(dir, f));
    // The schema and tasks as that roster left them (this code's store needs the new table to open).
    const db = new Database(dbPath);
    runMigrations(db, { dir, readonly: false, now: T0, path: dbPath });
    db.prepare("INSERT INTO personas (id, name, definition, config, created_at, updated_at) VALUES ('worker', 'w', '', '{}', 0, 0)").run();
    const insert = db.prepare("INSERT INTO tasks (id, title, persona_id, retry_policy, timeout_ms, created_at) VALUES (?, 't', 'worker', '{}', 1000, 0)");
    for (const id of [1, 2, 3]) insert.run(id);
    db.close();
    const after = await openStore({ path: dbPath, migrationsDir: held, now: T0 });
    const fresh = await openStore({ path: temp.path("fresh.db"), migrationsDir: held, now: T0 });
    try {
      const identity = await after.maintenance.identity();
      expect(identity.legacyTaskIdsUpTo).toBe(3);
      expect((await fresh.maintenance.identity()).id).not.toBe(identity.id);
    } finally {
      await after.close();
      await fresh.close();
    }
  });

  it("the migrated schema matches the committed snapshot", async () => {
    await (await openStore({ path: dbPath, now: T0 })).close();
    const schema = schemaOf(dbPath);
    if (process.env.UPDATE_SNAPSHOT === "1") writeFileSync(SNAPSHOT, schema);
    expect(existsSync(SNAPSHOT), `missing ${SNAPSHOT}; run UPDATE_SNAPSHOT=1 npx vitest run test/store/migrations.test.ts`).toBe(true);
    expect(schema).toBe(readFileSync(SNAPSHOT, "utf8"));
  });
});

describe("connection settings", () => {
  let temp: TempDir;
  beforeEach(() => {
    temp = makeTempDir("roster-pragmas-");
  });
  afterEach(() => temp.cleanup());

  it("a file database opens in WAL mode with foreign keys on, synchronous NORMAL and a busy timeout", async () => {
    const store = await openStore({ path: temp.path("roster.db"), now: T0 });
    try {
      expect(sqlitePragma(store, "journal_mode")).toBe("wal");
      expect(sqlitePragma(store, "foreign_keys")).toBe(1);
      expect(sqlitePragma(store, "synchronous")).toBe(1); // NORMAL
      expect(sqlitePragma(store, "busy_timeout")).toBe(5_000);
      expect(sqlitePragma(store, "wal_autocheckpoint")).toBe(WAL_AUTOCHECKPOINT_PAGES);
    } finally {
      await store.close();
    }
  });

  it("synchronous FULL and the busy timeout are honoured on request", async () => {
    const store = await openStore({ path: temp.path("roster.db"), synchronous: "FULL", busyTimeoutMs: 1_234, now: T0 });
    try {
      expect(sqlitePragma(store, "synchronous")).toBe(2); // FULL
      expect(sqlitePragma(store, "busy_timeout")).toBe(1_234);
    } finally {
      await store.close();
    }
  });

  it("a read-only open of a file that does not exist is refused and creates nothing", async () => {
    const path = temp.path("missing.db");
    const error = await refusal(() => openStore({ path, readonly: true, now: T0 }));
    expect(["DATABASE_INVALID", "DATABASE_READONLY"]).toContain(error.code);
    expect(existsSync(path)).toBe(false);
  });
});
