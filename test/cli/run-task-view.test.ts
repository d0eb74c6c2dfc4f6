import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { roster } from "./helpers.js";

const ADAPTER = join(import.meta.dirname, "..", "fixtures", "adapter-previous.mjs");

/**
 * `roster run` hands the adapter the same task view as the supervisor's workers
 * (src/adapters/task-view.ts): it used to copy the claim field by field and drop
 * `previous` (how the last attempt ended) and `inputs` (a person's answers).
 */
describe("the task roster run hands its adapter", () => {
  let temp: TempDir;
  beforeEach(() => {
    temp = makeTempDir("roster-run-view-");
    mkdirSync(temp.path("personas"));
    copyFileSync(ADAPTER, temp.path("personas", "adapter-previous.mjs"));
    writeFileSync(
      temp.path("personas", "resumer.md"),
      `---\nid: resumer\nname: Resumer\nadapter:\n  kind: module\n  path: ./adapter-previous.mjs\nretry:\n  maxAttempts: 3\n  backoff: fixed\n  baseMs: 10\n  maxMs: 10\n  jitter: 0\n---\nResumes.\n`,
    );
  });
  afterEach(() => temp.cleanup());

  it("carries the previous attempt's error into the retried attempt", async () => {
    const res = await roster(["run", "--persona", "resumer", "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "--json", "resume me"], {
      cwd: temp.dir,
    });
    expect(res.stderr).toMatch(/^roster: attempt 1 of task 1 failed \(ADAPTER_FAILED: the first attempt fails\); retrying in \d+ ms\n$/);
    expect(res.code).toBe(0);
    const printed = JSON.parse(res.stdout) as { status: string; attempts: number; result: unknown };
    expect(printed).toMatchObject({
      status: "completed",
      attempts: 2,
      result: { attempt: 2, previous: { code: "ADAPTER_FAILED", message: "the first attempt fails", retryable: true }, inputs: null },
    });
    const store = await openStore({ path: temp.path("roster.db") });
    try {
      expect((await store.tasks.get({ taskId: 1, eventLimit: 0 })).status).toBe("completed");
    } finally {
      await store.close();
    }
  });
});
