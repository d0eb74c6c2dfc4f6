import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
