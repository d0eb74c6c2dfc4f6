import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { FAKE_CLI, git, makeRepo, tempDir } from "./helpers.js";

/**
 * An attempt that did not end by its own doing is continued by the next one, through `roster start`
 * and `roster run` (real processes, worker threads, git and the fake CLI): its session, its saved
 * work and its fresh home (docs/agent-clis.md, "Continuing a failed attempt").
 */
const BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../dist/src/cli/bin.js");

let dir: { path: string; cleanup: () => void };
let tmp: string;
beforeEach(() => {
  dir = tempDir("continuity");
  // The attempts' fresh homes go to a temp folder of the test's own, to be counted.
  tmp = join(dir.path, "tmp");
  mkdirSync(tmp);
});
afterEach(() => dir.cleanup());

function roster(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir.path, encoding: "utf8", timeout: 120_000, env: { ...process.env, TMPDIR: tmp } }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

const homes = () => readdirSync(tmp).filter((name) => name.startsWith("roster-home-"));

function persona(extra: { timeoutMs?: number; env?: Record<string, string> } = {}): string {
  const personas = join(dir.path, "personas");
  mkdirSync(personas, { recursive: true });
  const env = Object.entries(extra.env ?? {})
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}\n`)
    .join("");
  writeFileSync(
    join(personas, "implementer.md"),
    `---\nid: implementer\nname: implementer\nadapter:\n  kind: agent\n  profile: claude\n  command: ${JSON.stringify(FAKE_CLI)}\n  home: fresh\n${env === "" ? "" : `  env:\n${env}`}  workspace:\n    kind: worktree\n    repo: ../repo\n    base: main\ntimeoutMs: ${extra.timeoutMs ?? 60_000}\nretry:\n  maxAttempts: 2\n  backoff: fixed\n  baseMs: 100\n  maxMs: 100\n---\nYou implement.\n`,
  );
  return personas;
}

async function readTask(db: string, id: number) {
  const store = await openStore({ path: db });
  try {
    return await store.tasks.get({ taskId: id });
  } finally {
    await store.close();
  }
}

async function databaseId(db: string): Promise<string> {
  const store = await openStore({ path: db });
  try {
    return (await store.maintenance.identity()).id;
  } finally {
    await store.close();
  }
}

describe("continuing an attempt that was stopped", () => {
  it("a timed-out attempt's error carries its session and saved work (no stack); the next attempt resumes both and the home is gone after", async () => {
    const repo = makeRepo(dir.path);
    const personas = persona({ timeoutMs: 3_000 });
    const db = join(dir.path, "team.db");
    expect((await roster(["init", "--db", db, "--personas", personas])).code).toBe(0);
    expect((await roster(["add", "--db", db, "--persona", "implementer", "--title", "Slow one", "--description", "Work. [fake:hang-first]"])).code).toBe(0);
    const started = await roster(["start", "--db", db, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "warn"]);
    expect(started.code, started.stderr).toBe(0);
    const task = await readTask(db, 1);
    expect(task.status).toBe("completed");
    expect(task.attempts).toBe(2);
    // The wip ref is named after the database (src/workspace/owner.ts).
    const wip = `refs/roster/wip/${await databaseId(db)}/1/1`;
    // The timed-out attempt's error, kept after the completion.
    const error = task.error as { code: string; stack?: string; details?: { sessionId?: string; workspace?: { wip?: string } } };
    expect(error.code).toBe("TIMEOUT");
    expect(error.stack).toBeUndefined();
    const session = error.details?.sessionId;
    expect(session).toMatch(/^fake-/);
    expect(error.details?.workspace?.wip).toBe(wip);
    // The next attempt resumed that conversation, with the work put back.
    const result = task.result as { text: string; resumed?: { sessionId?: string; wip?: string; files?: string[] } };
    expect(result.text).toContain(`(resumed ${session})`);
    expect(result.resumed).toEqual({ sessionId: session, wip, files: ["wip-1.txt"] });
    expect(git(repo, "for-each-ref", "refs/roster/wip/")).toBe("");
    expect(homes()).toEqual([]);
  });

  it("a rate-limited attempt is released uncounted and the next run resumes its session in its kept home, then removes that home (roster run)", async () => {
    makeRepo(dir.path);
    const state = join(dir.path, "state");
    mkdirSync(state);
    const personas = persona({ env: { FAKE_AGENT_STATE: state } });
    const db = join(dir.path, "team.db");
    expect((await roster(["init", "--db", db, "--personas", personas])).code).toBe(0);
    const ran = await roster(["run", "--db", db, "--personas", personas, "--persona", "implementer", "--title", "Limited", "Work. [fake:limit-once=1]", "--log-level", "warn"]);
    expect(ran.code, ran.stderr).toBe(0);
    const task = await readTask(db, 1);
    expect(task.status).toBe("completed");
    expect(task.attempts).toBe(1);
    const error = task.error as { details?: { failure?: string; sessionId?: string; home?: string } };
    expect(error.details?.failure).toBe("rate-limit");
    const session = error.details!.sessionId!;
    expect(session).toMatch(/^fake-/);
    expect(error.details?.home).toMatch(/roster-home-/);
    expect((task.result as { text: string }).text).toContain(`(resumed ${session})`);
    expect(homes()).toEqual([]);
  });
});
