import { readFileSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { makeTemplate, roster, tableCounts, type Template } from "./helpers.js";

/**
 * `roster schedule` through the built CLI (docs/humans-and-schedules.md): what it refuses
 * (one line `roster: CODE: message` naming what and where, exit 2, nothing written, a
 * refused file byte-for-byte as it was) and what it says.
 */
let template: Template;
let files: TempDir;

beforeAll(async () => {
  template = await makeTemplate();
  files = makeTempDir("roster-sched-cli-");
});
afterAll(() => {
  template.cleanup();
  files.cleanup();
});

/** A fresh copy of the template database. */
function fresh(): string {
  return template.copy().db;
}

/** Runs a command that must be refused: exit 2, one line matching `message`, no table changed, `file` (if any) unchanged. */
async function refused(db: string, args: string[], message: RegExp, file?: string): Promise<void> {
  const before = await tableCounts(db);
  const text = file === undefined ? null : readFileSync(file);
  const res = await roster([...args, "--db", db], { cwd: files.dir });
  expect(res.stdout).toBe("");
  expect(res.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(res.stderr.trimEnd()).toMatch(message);
  expect(res.code).toBe(2);
  expect(await tableCounts(db)).toEqual(before);
  if (file !== undefined) expect(readFileSync(file)).toEqual(text);
}

describe("schedule add and sync accept a cron expression of 5 fields, or 6 with seconds first", () => {
  const allowed = /must have 5 fields \(minute hour day-of-month month day-of-week\) or 6 with seconds first$/;

  it.each([
    ["7 fields (a year last)", "0 0 12 1 6 * 2030", 7],
    ["7 stars", "* * * * * * *", 7],
    ["a nickname", "@daily", 1],
    ["an ISO time (croner would fire it once)", "2030-01-01T00:00:00", 1],
    ["4 fields", "0 12 * *", 4],
  ])("refuses %s at --cron, naming the count", async (_what, cron, count) => {
    const db = fresh();
    await refused(
      db,
      ["schedule", "add", "s", "--cron", cron, "--persona", "reviewer", "--title", "t", "--tz", "UTC"],
      new RegExp(`^roster: VALIDATION: --cron: "${cron.replace(/[*]/g, "\\*")}" has ${count} fields?; ${allowed.source}`),
    );
  });

  it("refuses a 7-field expression in a schedules file, naming the file and the schedule", async () => {
    const db = fresh();
    const file = files.path("seven.yaml");
    writeFileSync(file, 'schedules:\n  - id: a\n    cron: "0 0 0 1 1 * 2030"\n    task: { persona: reviewer, title: T }\n');
    await refused(db, ["schedule", "sync", file], new RegExp(`^roster: VALIDATION: \\S*seven\\.yaml: schedules\\[0\\]\\.cron: "0 0 0 1 1 \\* 2030" has 7 fields; ${allowed.source}`), file);
  });

  it("accepts 5 and 6 fields, with any spacing", async () => {
    const db = fresh();
    for (const [id, cron] of [
      ["five", "0 3 * * *"],
      ["six", "*/10 * * * * *"],
      ["spaced", "  0   3 * *  1-5 "],
    ]) {
      const res = await roster(["schedule", "add", id!, "--cron", cron!, "--persona", "reviewer", "--title", "t", "--db", db]);
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
    }
  });
});

/** A database holding schedule `id`, fired once at its last time: no next fire left. */
async function firedOut(id: string): Promise<string> {
  const db = fresh();
  const store = await openStore({ path: db });
  try {
    const now = Date.now();
    await store.schedules.upsert({ schedules: [{ id, cron: "0 0 0 1 1 *", timezone: "UTC", task: { persona: "reviewer", title: "t" }, nextFireAt: now }], now });
    await store.schedules.fire({ scheduleId: id, expectedNextFireAt: now, fireAts: [now], skipped: [], nextFireAt: null, by: "test", now });
  } finally {
    await store.close();
  }
  return db;
}

describe("a schedule with no next fire", () => {
  it("shows as no next fire in schedule ls and null in --json, and resume says so", async () => {
    const db = await firedOut("once");
    const ls = await roster(["schedule", "ls", "--db", db]);
    expect(ls.stderr).toBe("");
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^once +0 0 0 1 1 \* +UTC +skip +reviewer +t +- +active \(no next fire\)$/m);
    const json = JSON.parse((await roster(["schedule", "ls", "--json", "--db", db])).stdout) as Array<{ id: string; nextFireAt: number | null }>;
    expect(json.map((s) => [s.id, s.nextFireAt])).toEqual([["once", null]]);

    expect((await roster(["schedule", "pause", "once", "--db", db])).code).toBe(0);
    const resume = await roster(["schedule", "resume", "once", "--db", db]);
    expect(resume.stderr).toBe("");
    expect(resume.code).toBe(0);
    // "0 0 0 1 1 *" does fire again (next 1 January): the resume computes it.
    expect(resume.stdout).toMatch(/^schedule once: resumed; next fire \d{4}-01-01T00:00:00\.000Z\n$/);
  });

  it("a resume of an expression that never fires again says there is no next fire, and --json gives null", async () => {
    const db = await firedOut("gone");
    // As a database written before 7 fields were refused holds it: a year long past.
    const raw = new Database(db);
    raw.prepare("UPDATE schedules SET cron = '0 0 0 1 1 * 2001' WHERE id = 'gone'").run();
    raw.close();
    const resume = await roster(["schedule", "resume", "gone", "--db", db]);
    expect(resume.stderr).toBe("");
    expect(resume.code).toBe(0);
    expect(resume.stdout).toBe('schedule gone: resumed; no next fire ("0 0 0 1 1 * 2001" never fires again: change its cron with `roster schedule add`, or remove it)\n');
    const json = JSON.parse((await roster(["schedule", "resume", "gone", "--json", "--db", db])).stdout) as { nextFireAt: number | null; pausedAt: number | null };
    expect(json).toMatchObject({ nextFireAt: null, pausedAt: null });
  });
});

describe("schedule add of a paused schedule", () => {
  it("says it stays paused and how to resume it, not a next fire", async () => {
    const db = fresh();
    const add = ["schedule", "add", "nightly", "--cron", "0 3 * * *", "--persona", "reviewer", "--title", "t", "--db", db];
    expect((await roster(add)).stdout).toMatch(/^schedule nightly: next fire \S+Z\n$/);
    expect((await roster(["schedule", "pause", "nightly", "--db", db])).code).toBe(0);
    const again = await roster([...add.slice(0, -2), "--title", "t2", "--db", db]);
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("schedule nightly: paused (it stays paused; `roster schedule resume nightly` fires it again)\n");
    const json = JSON.parse((await roster(["schedule", "ls", "--json", "--db", db])).stdout) as Array<{ pausedAt: number | null; task: { title: string } }>;
    expect(json).toMatchObject([{ task: { title: "t2" } }]);
    expect(json[0]!.pausedAt).not.toBeNull();
  });
});

describe("a schedule's payload", () => {
  it("is refused at --payload when it is not an object, or holds the reserved key schedule", async () => {
    const db = fresh();
    const add = (payload: string) => ["schedule", "add", "s", "--cron", "0 3 * * *", "--persona", "reviewer", "--title", "t", "--payload", payload];
    await refused(db, add('"x"'), /^roster: VALIDATION: --payload: must be an object \(each fire adds payload\.schedule = \{ id, fireAt \} to it\), got a string$/);
    await refused(db, add("[1]"), /^roster: VALIDATION: --payload: must be an object .*, got an array$/);
    await refused(db, add('{"schedule":1}'), /^roster: VALIDATION: --payload\.schedule: is reserved \(each fire sets it to \{ id, fireAt \}\); name your key otherwise$/);
  });

  it("is refused in a schedules file, naming the file and the schedule, the file left as it was", async () => {
    const db = fresh();
    const file = files.path("payload.yaml");
    writeFileSync(file, "schedules:\n  - id: a\n    cron: \"0 3 * * *\"\n    task: { persona: reviewer, title: T, payload: [1, 2] }\n");
    await refused(db, ["schedule", "sync", file], /^roster: VALIDATION: \S*payload\.yaml: schedules\[0\]\.task\.payload: must be an object .*, got an array$/, file);
  });
});

describe("schedule sync of a file with several problems", () => {
  it("names every one of them on one line: unknown keys, zones and expressions alike, the file left as it was", async () => {
    const db = fresh();
    const file = files.path("many.yaml");
    writeFileSync(
      file,
      [
        "schedules:",
        "  - id: a",
        '    cron: "0 3 * * *"',
        "    owner: me",
        "    task: { persona: reviewer, title: T }",
        "  - id: b",
        '    cron: "0 3 * * *"',
        "    timezone: Mars/Olympus",
        "    task: { persona: reviewer, title: T }",
        "  - id: c",
        '    cron: "61 * * * *"',
        "    colour: red",
        "    timezone: Nowhere/Land",
        "    task: { persona: reviewer, title: T }",
        "",
      ].join("\n"),
    );
    await refused(
      db,
      ["schedule", "sync", file],
      new RegExp(
        [
          /^roster: VALIDATION: \S*many\.yaml: schedules\.0: Unrecognized key: "owner"/,
          /schedules\[1\]\.timezone: "Mars\/Olympus" is not an IANA time zone \(such as UTC or Europe\/Paris\)/,
          /schedules\.2: Unrecognized key: "colour"/,
          /schedules\[2\]\.timezone: "Nowhere\/Land" is not an IANA time zone \(such as UTC or Europe\/Paris\)/,
          /schedules\[2\]\.cron: "61 \* \* \* \*" is not a cron expression croner accepts \(.*\)$/,
        ]
          .map((r) => r.source)
          .join("; "),
      ),
      file,
    );
  });
});
