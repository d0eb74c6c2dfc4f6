import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadPersonaDir, toPersonaUpsert } from "../../src/personas/load.js";
import { openStore } from "../../src/store/index.js";
import { PRIORITY_MAX } from "../../src/store/input.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { roster } from "./helpers.js";

const ADAPTER = join(import.meta.dirname, "..", "fixtures", "adapter-previous.mjs");

/**
 * `roster run` drives its task through a supervisor that serves that task alone
 * (claimed by id): the other ready tasks of its persona are not its business.
 */
describe("roster run serves its own task only", () => {
  let temp: TempDir;
  beforeEach(() => {
    temp = makeTempDir("roster-run-one-");
    mkdirSync(temp.path("personas"));
    writeFileSync(temp.path("personas", "echoer.md"), "---\nid: echoer\nname: Echoer\nadapter:\n  kind: echo\n---\nEchoes.\n");
    copyFileSync(ADAPTER, temp.path("personas", "adapter-previous.mjs"));
    writeFileSync(
      temp.path("personas", "resumer.md"),
      "---\nid: resumer\nname: Resumer\nadapter:\n  kind: module\n  path: ./adapter-previous.mjs\nretry:\n  maxAttempts: 3\n  backoff: fixed\n  baseMs: 10\n  maxMs: 10\n  jitter: 0\n---\nResumes.\n",
    );
  });
  afterEach(() => temp.cleanup());

  const run = (persona: string, prompt: string, ...more: string[]) =>
    roster(["run", "--persona", persona, "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "--json", ...more, prompt], { cwd: temp.dir });

  it("leaves an older ready task of the same persona and priority untouched: no claim, no release, no event", async () => {
    const store = await openStore({ path: temp.path("roster.db") });
    let bystander: number;
    try {
      await store.personas.sync({ personas: loadPersonaDir(temp.path("personas")).map(toPersonaUpsert), now: Date.now(), sourceDir: resolve(temp.path("personas")) });
      // Older and of the same (top) priority: a persona-wide claim would take it before roster run's own task.
      const { ids: [id] } = await store.tasks.enqueue({ tasks: [{ persona: "echoer", title: "bystander", priority: PRIORITY_MAX }], now: Date.now() });
      if (id === undefined) throw new Error("enqueue gave no id for the bystander");
      bystander = id;
    } finally {
      await store.close();
    }

    const res = await run("echoer", "mine");
    expect(res.stderr).toBe(""); // --json: the outcome goes to stdout
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ taskId: 2, status: "completed", attempts: 1 });

    const after = await openStore({ path: temp.path("roster.db") });
    try {
      const other = await after.tasks.get({ taskId: bystander, eventLimit: 0 });
      expect(other).toMatchObject({ status: "pending", attempts: 0, assignedAgentId: null });
      expect((await after.tasks.events({ taskId: bystander, limit: 0 })).map((e) => e.type)).toEqual(["task:enqueued"]);
      const mine = await after.tasks.get({ taskId: 2, eventLimit: 0 });
      expect(mine.status).toBe("completed");
      // Its start is written at once (startFoldMs 0) unless the attempt finished first (the start fold:
      // an echo on a thread already up can): task:started between the claim and the completion, or none.
      const types = (await after.tasks.events({ taskId: 2, limit: 0 })).map((e) => e.type);
      expect([["task:enqueued", "task:claimed", "task:started", "task:completed"], ["task:enqueued", "task:claimed", "task:completed"]]).toContainEqual(types);
    } finally {
      await after.close();
    }
  });

  it("runs a task of a persona otherwise left to external agents, as it always did", async () => {
    writeFileSync(temp.path("personas", "outside.md"), "---\nid: outside\nname: Outside\nexternal: true\nadapter:\n  kind: echo\n---\nServed by MCP agents.\n");
    const res = await run("outside", "do it here");
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ taskId: 1, status: "completed", attempts: 1 });
  });

  it("with --no-retry, ends the task failed at its first failed attempt, exit 1", async () => {
    const res = await run("resumer", "fail once", "--no-retry");
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({ taskId: 1, status: "failed", attempts: 1, error: { code: "ADAPTER_FAILED", message: "the first attempt fails", retryable: false } });
    const store = await openStore({ path: temp.path("roster.db") });
    try {
      expect(await store.tasks.get({ taskId: 1, eventLimit: 0 })).toMatchObject({ status: "failed", attempts: 1 });
      expect((await store.tasks.events({ taskId: 1, limit: 0 })).map((e) => e.type)).not.toContain("task:retrying");
    } finally {
      await store.close();
    }
  });
});
