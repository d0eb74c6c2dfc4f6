import Database from "better-sqlite3";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BIN, makeTemplate, tableCounts, type RunResult, type Template } from "../cli/helpers.js";

/**
 * Database faults (issue 7, part 4), end to end through the real CLI binary on
 * real SQLite files: each gets one clear `roster: CODE: message` line, the exit
 * code of the README's table (1: something failed that the input did not cause;
 * 2: bad input), and leaves the database as it was (same bytes, or same rows,
 * and `PRAGMA integrity_check` ok).
 *
 * Permissions: the tests may run as root, which chmod does not stop. Then the
 * commands that meet a read-only file or an unreadable folder run as the
 * unprivileged user `nobody` (uid/gid 65534, spawn's uid/gid options), for whom
 * the permission bits hold; as any other user they run as that user.
 */

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65_534;

/** `node dist/src/cli/bin.js ...args`, without the parent's ROSTER_* variables; unprivileged when `unprivileged` and root. */
function roster(args: string[], options: { cwd: string; env?: Record<string, string>; unprivileged?: boolean }): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_")) env[key] = value;
  Object.assign(env, options.env ?? {});
  const user = options.unprivileged === true && IS_ROOT ? { uid: NOBODY, gid: NOBODY } : {};
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env, stdio: ["ignore", "pipe", "pipe"], ...user });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function integrity(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.pragma("integrity_check", { simple: true }) as string;
  } finally {
    db.close();
  }
}

/** One line on stderr matching `pattern`, the exit code, and nothing on stdout. */
function expectRefused(res: RunResult, code: number, pattern: RegExp): void {
  expect(res.stdout).toBe("");
  const lines = res.stderr.trimEnd().split("\n");
  expect(lines, res.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(res.code, res.stderr).toBe(code);
}

let template: Template;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  template = await makeTemplate();
  // `nobody` must reach the template's personas folder.
  chmodSync(template.temp.dir, 0o755);
  // One task in the template, so "no damage" has rows to compare.
  const res = await roster(["add", "--db", template.db, "--persona", "reviewer", "--title", "already here"], { cwd: template.temp.dir });
  expect(res.code, res.stderr).toBe(0);
});
afterAll(() => template.cleanup());
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A copy of the template database in a folder of its own, which `nobody` may enter. */
function copy(): { dir: string; db: string } {
  const own = template.copy();
  chmodSync(own.dir, 0o755);
  cleanups.push(() => {
    chmodSync(own.dir, 0o755);
    own.cleanup();
  });
  return own;
}

const START = ["--no-metrics", "--exit-when-idle", "--log-level", "warn"];

describe("database faults: another connection holds the write lock", () => {
  it("add and start give up with DATABASE_BUSY and exit 1 once the lock outlasts busy_timeout, writing nothing", async () => {
    const { dir, db } = copy();
    const before = await tableCounts(db);
    const holder = new Database(db);
    holder.pragma("busy_timeout = 0");
    holder.prepare("BEGIN IMMEDIATE").run();
    try {
      const env = { ROSTER_BUSY_TIMEOUT_MS: "100" };
      expectRefused(
        await roster(["add", "--db", db, "--persona", "reviewer", "--title", "blocked"], { cwd: dir, env }),
        1,
        // Opening checks the migrations inside a write transaction, so the lock stops it there.
        new RegExp(`^roster: DATABASE_BUSY: opening ${db}: the database is locked by another connection and stayed locked past busy_timeout \\(database is locked\\)$`),
      );
      const start = await roster(["start", "--db", db, "--personas", template.personasDir, ...START], { cwd: dir, env });
      expect(start.code, start.stderr).toBe(1);
      expect(start.stderr.trimEnd().split("\n").at(-1)).toMatch(/^roster: DATABASE_BUSY: .*locked by another connection/);
    } finally {
      holder.prepare("ROLLBACK").run();
      holder.close();
    }
    expect(await tableCounts(db)).toEqual(before);
    expect(integrity(db)).toBe("ok");
  });
});

describe("database faults: a read-only database", () => {
  it("refuses add and start on a read-only file with DATABASE_READONLY and exit 1, leaves its bytes alone, and still serves ls", async () => {
    const { dir, db } = copy();
    // The folder stays writable, as after `chmod 0444 roster.db`: SQLite may create -wal and -shm beside it.
    chmodSync(dir, 0o777);
    chmodSync(db, 0o444);
    const hash = sha256(db);
    expectRefused(
      await roster(["add", "--db", db, "--persona", "reviewer", "--title", "nope"], { cwd: dir, unprivileged: true }),
      1,
      /^roster: DATABASE_READONLY: tasks\.enqueue: cannot write the database \(attempt to write a readonly database\)$/,
    );
    const start = await roster(["start", "--db", db, "--personas", template.personasDir, ...START], { cwd: dir, unprivileged: true });
    expect(start.code, start.stderr).toBe(1);
    expect(start.stderr.trimEnd().split("\n").at(-1)).toMatch(/^roster: DATABASE_READONLY: .*cannot write the database/);
    const ls = await roster(["ls", "--db", db, "--json"], { cwd: dir, unprivileged: true });
    expect(ls.code, ls.stderr).toBe(0);
    expect((JSON.parse(ls.stdout) as Array<{ title: string }>).map((t) => t.title)).toEqual(["already here"]);
    expect(sha256(db)).toBe(hash);
    expect(integrity(db)).toBe("ok");
  });

  it("refuses a database in a read-only folder with DATABASE_READONLY naming the folder, and exit 1", async () => {
    const { dir, db } = copy();
    chmodSync(db, 0o444);
    chmodSync(dir, 0o555);
    const hash = sha256(db);
    for (const args of [
      ["add", "--db", db, "--persona", "reviewer", "--title", "nope"],
      ["start", "--db", db, "--personas", template.personasDir, ...START],
    ]) {
      expectRefused(
        await roster(args, { cwd: dir, unprivileged: true }),
        1,
        /^roster: DATABASE_READONLY: opening .*roster\.db: cannot create the database's -wal and -shm files: its folder is read-only/,
      );
    }
    expect(sha256(db)).toBe(hash);
    expect(existsSync(`${db}-wal`)).toBe(false);
    chmodSync(dir, 0o755);
    expect(integrity(db)).toBe("ok");
  });
});

describe("database faults: files that are not this roster's database", () => {
  it("refuses a file that is not a database with DATABASE_INVALID and exit 1 for every command, leaving its bytes alone", async () => {
    const { dir, db } = copy();
    const junk = Buffer.from("my shopping list, not a database\n".repeat(300));
    writeFileSync(db, junk);
    for (const args of [
      ["add", "--db", db, "--persona", "reviewer", "--title", "nope"],
      ["ls", "--db", db],
      ["status", "--db", db],
      ["start", "--db", db, "--personas", template.personasDir, ...START],
      ["init", "--db", db, "--personas", template.personasDir],
    ]) {
      expectRefused(await roster(args, { cwd: dir }), 1, /^roster: DATABASE_INVALID: .*roster\.db.*not a roster database \(file is not a database\)$/);
    }
    expect(readFileSync(db).equals(junk)).toBe(true);
    expect(existsSync(`${db}-wal`)).toBe(false);
  });

  it("refuses a database from a newer roster with DATABASE_TOO_NEW and exit 1, leaving its bytes alone", async () => {
    const { dir, db } = copy();
    const future = new Database(db);
    future.prepare("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, '9999_from_the_future.sql', 'x', 0)").run();
    future.close();
    const hash = sha256(db);
    for (const args of [
      ["add", "--db", db, "--persona", "reviewer", "--title", "nope"],
      ["ls", "--db", db],
      ["start", "--db", db, "--personas", template.personasDir, ...START],
      ["init", "--db", db, "--personas", template.personasDir],
    ]) {
      expectRefused(
        await roster(args, { cwd: dir }),
        1,
        /^roster: DATABASE_TOO_NEW: .*roster\.db: schema version 9999 \(9999_from_the_future\.sql\) is newer than this roster knows \(\d+\); upgrade roster$/,
      );
    }
    expect(sha256(db)).toBe(hash);
    expect(integrity(db)).toBe("ok");
  });
});

describe("database faults: the personas folder", () => {
  it("refuses to start with a personas folder that does not exist, exit 2, and leaves the database alone", async () => {
    const { dir, db } = copy();
    const hash = sha256(db);
    const missing = `${dir}/no-such-personas`;
    expectRefused(await roster(["start", "--db", db, "--personas", missing, ...START], { cwd: dir }), 2, /^roster: \w+: .*no-such-personas/);
    expect(existsSync(missing)).toBe(false);
    expect(sha256(db)).toBe(hash);
    expect(integrity(db)).toBe("ok");
  });

  it("refuses to start with a personas folder it cannot read, naming it, exit 2, and leaves the database alone", async () => {
    const { dir, db } = copy();
    chmodSync(dir, 0o777);
    chmodSync(db, 0o666);
    const personas = `${dir}/personas`;
    cpSync(template.personasDir, personas, { recursive: true });
    chmodSync(personas, 0o000);
    cleanups.unshift(() => chmodSync(personas, 0o755));
    const hash = sha256(db);
    // Exit 2, as for any persona folder start cannot use (the README's "bad persona file" row).
    expectRefused(
      await roster(["start", "--db", db, "--personas", personas, ...START], { cwd: dir, unprivileged: true }),
      2,
      new RegExp(`^roster: PERSONA_INVALID: --personas ${personas}: cannot read personas folder \\(EACCES: permission denied`),
    );
    expect(sha256(db)).toBe(hash);
    expect(integrity(db)).toBe("ok");
  });
});
