import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { makeTemplate, roster, tableCounts, type RunResult, type Template } from "../cli/helpers.js";

/**
 * Refusals (issue 12, defect 8), through the built CLI on real files: every
 * command that opens the database either works or prints one line
 * `roster: CODE: message` and exits non-zero; and a command that refuses a file
 * leaves it byte for byte as it was (sha256 before and after), without creating
 * its -wal, -shm or -journal side files.
 *
 * Which commands may create a database: init, start, run and mcp make one where
 * there is no file or an empty (0-byte) file. Every other command refuses both
 * with a hint to run `roster init`.
 */

let template: Template;
let temp: TempDir;

beforeAll(async () => {
  template = await makeTemplate();
  temp = makeTempDir("roster-refusals-");
  const res = await roster(["add", "--db", template.db, "--persona", "reviewer", "--title", "already here"]);
  expect(res.code, res.stderr).toBe(0);
});
afterAll(() => {
  template?.cleanup();
  temp?.cleanup();
});

const START = ["--no-metrics", "--exit-when-idle", "--log-level", "warn"];

/** Every command that opens the database, by name, with the arguments that reach the open. */
function commands(db: string): Array<[string, string[]]> {
  const personas = template?.personasDir ?? "PERSONAS";
  return [
    ["init", ["init", "--db", db, "--personas", personas]],
    ["start", ["start", "--db", db, "--personas", personas, ...START]],
    ["run", ["run", "hello", "--persona", "reviewer", "--db", db, "--personas", personas]],
    ["mcp", ["mcp", "--db", db, "--personas", personas, "--log-level", "warn"]],
    ["add", ["add", "--db", db, "--persona", "reviewer", "--title", "nope"]],
    ["ls", ["ls", "--db", db]],
    ["status", ["status", "--db", db]],
    ["show", ["show", "1", "--db", db]],
    ["events", ["events", "1", "--db", db]],
    ["prune", ["prune", "--older-than", "0", "--db", db]],
    ["retry", ["retry", "1", "--db", db]],
    ["cancel", ["cancel", "1", "--db", db]],
    ["agents", ["agents", "--db", db]],
    ["personas", ["personas", "--db", db]],
  ];
}
const COMMAND_NAMES = commands("DB").map(([name]) => name);
const CREATORS = new Set(["init", "start", "run", "mcp"]);

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** The file's hash and which side files exist beside it. */
function fingerprint(path: string): { hash: string; side: string[] } {
  return { hash: sha256(path), side: ["-wal", "-shm", "-journal"].filter((s) => existsSync(`${path}${s}`)) };
}

/** One line on stderr matching `pattern`, nothing on stdout, and the exit code. */
function expectRefused(res: RunResult, code: number, pattern: RegExp): void {
  expect(res.stdout).toBe("");
  const lines = res.stderr.trimEnd().split("\n");
  expect(lines, res.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(res.code, res.stderr).toBe(code);
}

let serial = 0;
/** A folder of its own for one case. */
function folder(): string {
  const dir = temp.path(`case-${++serial}`);
  mkdirSync(dir);
  return dir;
}

/** A copy of the template (one task) that a newer roster has migrated: schema_migrations knows version 9999. */
function newerDatabase(journal: "wal" | "delete"): string {
  const db = join(folder(), "roster.db");
  copyFileSync(template.db, db);
  const future = new Database(db);
  future.pragma(`journal_mode = ${journal}`);
  future.exec("CREATE TABLE from_the_future (id INTEGER PRIMARY KEY) STRICT");
  future.prepare("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, '9999_from_the_future.sql', 'x', 0)").run();
  future.close();
  return db;
}

/** Another program's SQLite database. */
function foreignDatabase(journal: "wal" | "delete"): string {
  const db = join(folder(), "roster.db");
  const other = new Database(db);
  other.pragma(`journal_mode = ${journal}`);
  other.exec("CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO recipes (name) VALUES ('bread')");
  other.close();
  return db;
}

describe("a database from a newer roster is refused by every command and left byte for byte as it was", () => {
  for (const journal of ["delete", "wal"] as const) {
    it.concurrent.each(COMMAND_NAMES)(`${journal} journal: %s`, async (name) => {
      const db = newerDatabase(journal);
      const args = commands(db).find(([n]) => n === name)![1];
      const before = fingerprint(db);
      expect(before.side).toEqual([]);
      expectRefused(
        await roster(args, { cwd: join(db, "..") }),
        1,
        /^roster: DATABASE_TOO_NEW: \S*roster\.db: schema version 9999 \(9999_from_the_future\.sql\) is newer than this roster knows \(\d+\); upgrade roster$/,
      );
      expect(fingerprint(db)).toEqual(before);
    });
  }
});

describe("another program's SQLite database is refused by every command and left byte for byte as it was", () => {
  for (const journal of ["delete", "wal"] as const) {
    it.concurrent.each(COMMAND_NAMES)(`${journal} journal: %s`, async (name) => {
      const db = foreignDatabase(journal);
      const args = commands(db).find(([n]) => n === name)![1];
      const before = fingerprint(db);
      expectRefused(await roster(args, { cwd: join(db, "..") }), 1, /^roster: DATABASE_INVALID: \S*roster\.db: holds tables that are not roster's \(recipes\)/);
      expect(fingerprint(db)).toEqual(before);
    });
  }
});

describe("an empty (0-byte) file", () => {
  it.concurrent.each(COMMAND_NAMES.filter((name) => !CREATORS.has(name)))(
    "is refused by %s with a hint to run roster init, and stays empty",
    async (name) => {
      const db = join(folder(), "roster.db");
      writeFileSync(db, "");
      const args = commands(db).find(([n]) => n === name)![1];
      expectRefused(
        await roster(args, { cwd: join(db, "..") }),
        2,
        /^roster: VALIDATION: --db \S*roster\.db: is an empty file, not a roster database; run `roster init --db \S*roster\.db` to make one there$/,
      );
      expect(statSync(db).size).toBe(0);
      expect(readdirSync(join(db, ".."))).toEqual(["roster.db"]);
    },
  );

  it("becomes a roster database with init", async () => {
    const db = join(folder(), "roster.db");
    writeFileSync(db, "");
    const res = await roster(["init", "--db", db, "--personas", template.personasDir]);
    expect(res.code, res.stderr).toBe(0);
    expect(await tableCounts(db)).toMatchObject({ tasks: 0 });
  });
});

describe("a --db path that cannot hold a database", () => {
  it.concurrent.each(COMMAND_NAMES)("%s refuses a path in a folder that does not exist, and creates no folder", async (name) => {
    const dir = folder();
    const db = join(dir, "missing", "roster.db");
    const args = commands(db).find(([n]) => n === name)![1];
    expectRefused(await roster(args, { cwd: dir }), 2, /^roster: DATABASE_PATH_INVALID: (--db )?\S*missing\/roster\.db: .*folder \S*missing does not exist/);
    expect(existsSync(join(dir, "missing"))).toBe(false);
  });

  it.concurrent.each(COMMAND_NAMES)("%s refuses a path that is a folder, and leaves it empty", async (name) => {
    const dir = folder();
    const db = join(dir, "data");
    mkdirSync(db);
    const args = commands(db).find(([n]) => n === name)![1];
    expectRefused(await roster(args, { cwd: dir }), 2, /^roster: DATABASE_PATH_INVALID: (--db )?\S*data: is a folder, not a database file/);
    expect(readdirSync(db)).toEqual([]);
    expect(readdirSync(dir)).toEqual(["data"]);
  });

  it.each(["init", "add", "ls"])("%s refuses a path under a file, naming the file", async (name) => {
    const dir = folder();
    writeFileSync(join(dir, "notes.txt"), "hello\n");
    const db = join(dir, "notes.txt", "roster.db");
    const args = commands(db).find(([n]) => n === name)![1];
    expectRefused(await roster(args, { cwd: dir }), 2, /^roster: DATABASE_PATH_INVALID: (--db )?\S*notes\.txt\/roster\.db: .*\S*notes\.txt is a file, not a folder/);
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("hello\n");
  });
});

/**
 * Disk full on a real, small filesystem: a 1 MiB tmpfs mounted for this suite.
 * Mounting needs root and a kernel that lets this process mount; where either
 * is missing the cases skip themselves (and say so) rather than fake ENOSPC.
 */
describe("disk full (a 1 MiB tmpfs)", () => {
  let tmpfs: TempDir | null = null;
  let why = "";
  const filler = () => join(tmpfs!.dir, "filler");
  beforeAll(() => {
    if (process.getuid?.() !== 0) {
      why = "not root: cannot mount a tmpfs";
      return;
    }
    const dir = makeTempDir("roster-tmpfs-");
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir.dir], { stdio: "ignore" });
      tmpfs = dir;
    } catch (error) {
      why = `mount -t tmpfs failed: ${String(error)}`;
      dir.cleanup();
    }
  });
  afterAll(() => {
    if (tmpfs === null) return;
    execFileSync("umount", [tmpfs.dir]);
    tmpfs.cleanup();
  });
  beforeEach((ctx) => {
    if (tmpfs === null) ctx.skip(why);
  });

  /** Fills the filesystem to ENOSPC, then frees `leaveBytes`. */
  function fill(leaveBytes: number): void {
    rmSync(filler(), { force: true });
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${filler()}`, "bs=4096"], { stdio: "ignore" });
    } catch {
      // dd exits 1 at ENOSPC, which is the point.
    }
    const size = statSync(filler()).size;
    execFileSync("truncate", ["-s", String(Math.max(0, size - leaveBytes)), filler()]);
  }

  it("add with a payload the disk has no room for prints DISK_FULL naming the database, exits 1, and writes no task", async () => {
    const db = join(tmpfs!.dir, "roster.db");
    copyFileSync(template.db, db);
    const before = await tableCounts(db);
    fill(192 * 1024);
    const plan = join(temp.dir, "big-plan.json");
    writeFileSync(plan, JSON.stringify({ tasks: [{ persona: "reviewer", title: "big", payload: { text: "x".repeat(600 * 1024) } }] }));
    expectRefused(
      await roster(["add", "--db", db, "--file", plan], { cwd: temp.dir }),
      1,
      new RegExp(`^roster: DISK_FULL: (\\S*big-plan\\.json: )?tasks\\.enqueue: the disk holding ${db} is full \\(database or disk is full\\); free some space and try again$`),
    );
    rmSync(filler());
    expect(await tableCounts(db)).toEqual(before);
  });

  it("add on a disk with no room at all prints DISK_FULL while opening, exits 1, and leaves the database's bytes alone", async () => {
    const db = join(tmpfs!.dir, "full.db");
    copyFileSync(template.db, db);
    const hash = sha256(db);
    fill(0);
    expectRefused(
      await roster(["add", "--db", db, "--persona", "reviewer", "--title", "nope"], { cwd: temp.dir }),
      1,
      new RegExp(`^roster: DISK_FULL: opening ${db}: the disk holding ${db} is full \\(.*\\); free some space and try again$`),
    );
    rmSync(filler());
    expect(sha256(db)).toBe(hash);
  });
});
