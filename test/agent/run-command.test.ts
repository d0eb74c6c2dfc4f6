import { execFile, spawn } from "node:child_process";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { FAKE_CLI, git, makeRepo, processAlive, readRecord, tempDir, waitUntil } from "./helpers.js";

/** `roster run` through the built binary (npm test builds first; or `npx tsc -p tsconfig.json`). */
const BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../dist/src/cli/bin.js");

let template: { path: string; cleanup: () => void };
let dir: { path: string; cleanup: () => void };
let personas: string;
let db: string;

beforeAll(() => {
  template = tempDir("run-template");
  makeRepo(template.path);
});
afterAll(() => template.cleanup());

beforeEach(() => {
  dir = tempDir("run");
  personas = join(dir.path, "personas");
  mkdirSync(personas);
  db = join(dir.path, "roster.db");
});
afterEach(() => dir.cleanup());

function persona(id: string, frontMatter: string, definition = `You are ${id}.`): void {
  writeFileSync(join(personas, `${id}.md`), `---\nid: ${id}\nname: ${id}\n${frontMatter.trim()}\n---\n${definition}\n`);
}

function agentPersona(id: string, extra = ""): void {
  persona(id, `adapter:\n  kind: agent\n  profile: claude\n  command: ${JSON.stringify(FAKE_CLI)}\n${extra}`);
}

function roster(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir.path, encoding: "utf8" }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
      done({ code, stdout, stderr });
    });
  });
}

const run = (personaId: string, prompt: string, ...more: string[]) => roster(["run", "--persona", personaId, "--db", db, "--personas", personas, "--json", ...more, prompt]);

async function withDb<T>(fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const store = await openStore({ path: db });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe("roster run", () => {
  it("runs one task through a fake agent CLI and records it completed with the CLI's result", async () => {
    agentPersona("coder");
    const out = await run("coder", 'Say hi to "everyone" $(whoami)');
    expect(out.code).toBe(0);
    const printed = JSON.parse(out.stdout) as { taskId: number; status: string };
    expect(printed).toMatchObject({ status: "completed", attempts: 1 });
    const task = await withDb((store) => store.tasks.get({ taskId: printed.taskId }));
    expect(task.status).toBe("completed");
    expect(task.title).toBe('Say hi to "everyone" $(whoami)');
    expect(task.result).toMatchObject({ text: 'done: Say hi to "everyone" $(whoami)', profile: "claude" });
    expect(task.events.map((e) => e.type)).toEqual(expect.arrayContaining(["task:enqueued", "task:claimed", "task:started", "task:completed"]));
    const agent = await withDb((store) => store.agents.get({ agentId: task.assignedAgentId ?? task.events.find((e) => e.type === "task:claimed")!.agentId! }));
    expect(agent).toMatchObject({ kind: "cli", status: "deregistered" });
  });

  it("runs the agent in its own worktree and leaves its commit on the task's branch", async () => {
    const repo = join(dir.path, "repo");
    cpSync(join(template.path, "repo"), repo, { recursive: true });
    agentPersona("coder", `  workspace:\n    kind: worktree\n    repo: ../repo\n    base: main\n    keep: never`);
    const out = await run("coder", "Add a file [fake:commit]");
    expect(out.code).toBe(0);
    const { taskId } = JSON.parse(out.stdout) as { taskId: number };
    const owner = await withDb(async (store) => (await store.maintenance.identity()).id);
    expect(git(repo, "diff", "--name-only", `main..roster/${owner}/task-${taskId}-a1`)).toBe(`task-${taskId}.txt`);
    expect(git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree "))).toHaveLength(1);
  });

  it("enqueues a planner's tasks as children with their dependencies", async () => {
    agentPersona("lead", "  role: planner");
    persona("implementer", "adapter:\n  kind: echo");
    persona("reviewer", "adapter:\n  kind: echo");
    const out = await run("lead", "Plan the feature [fake:plan]");
    expect(out.code).toBe(0);
    const { taskId, childIds } = JSON.parse(out.stdout) as { taskId: number; childIds: number[] };
    expect(childIds).toHaveLength(3);
    const children = await withDb((store) => Promise.all(childIds.map((id) => store.tasks.get({ taskId: id }))));
    expect(children.map((c) => [c.title, c.persona, c.parentId, c.status])).toEqual([
      ["Build the API", "implementer", taskId, "pending"],
      ["Build the UI", "implementer", taskId, "pending"],
      ["Review both", "reviewer", taskId, "waiting"],
    ]);
    expect(children[2]!.dependsOn.sort()).toEqual([childIds[0], childIds[1]].sort());
  });

  // A custom CLI (no dialect roster reads): a rate limit its patterns recognise is a provider limit as a known
  // CLI's is, given back uncounted (docs/economics.md; test/agent/provider-limits.test.ts under roster start).
  it("gives a custom CLI's rate-limited attempt back uncounted and waits out the provider's pause (Ctrl-C cancels)", async () => {
    writeFileSync(
      join(personas, "coder.md"),
      `---\nid: coder\nname: coder\nadapter:\n  kind: agent\n  profile: custom\n  command: ${JSON.stringify(FAKE_CLI)}\n  args: ["-p"]\n  rateLimitPatterns: ["usage limit reached"]\nretry:\n  maxAttempts: 2\n  backoff: fixed\n  baseMs: 10\n  maxMs: 10\n  jitter: 0\n---\nYou are coder.\n`,
    );
    const child = spawn(process.execPath, [BIN, "run", "--persona", "coder", "--db", db, "--personas", personas, "Busy [fake:rate-limit]"], { cwd: dir.path, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    await waitUntil(() => (stderr.includes("given back") ? true : undefined), 30_000);
    expect(stderr).toMatch(/^roster: attempt 1 of task 1 was given back, not counted \(ADAPTER_FAILED: .*rate limited: provider paused, attempt not counted.*\); retrying in (59|60)\.\d s\n/);
    const task = await withDb((store) => store.tasks.get({ taskId: 1 }));
    expect(task).toMatchObject({ status: "pending", attempts: 0 });
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect((await withDb((store) => store.tasks.get({ taskId: 1 }))).status).toBe("cancelled");
  });

  it("says so when a known CLI's usage limit gives the attempt back uncounted, and waits for the reset (Ctrl-C cancels)", async () => {
    agentPersona("coder");
    const child = spawn(process.execPath, [BIN, "run", "--persona", "coder", "--db", db, "--personas", personas, "Busy [fake:rate-limit]"], { cwd: dir.path, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    await waitUntil(() => (stderr.includes("given back") ? true : undefined), 30_000);
    expect(stderr).toMatch(/^roster: attempt 1 of task 1 was given back, not counted \(ADAPTER_FAILED: .*usage limit.*\); retrying in \d+\.\d s\n/);
    const task = await withDb((store) => store.tasks.get({ taskId: 1 }));
    expect(task).toMatchObject({ status: "pending", attempts: 0 });
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect((await withDb((store) => store.tasks.get({ taskId: 1 }))).status).toBe("cancelled");
  });

  it("fails at once, exit 1, when the CLI's failure cannot be retried", async () => {
    agentPersona("coder");
    const out = await run("coder", "No key [fake:auth]");
    expect(out.code).toBe(1);
    const printed = JSON.parse(out.stdout) as { taskId: number; status: string; attempts: number };
    expect(printed).toMatchObject({ status: "failed", attempts: 1 });
    expect((await withDb((store) => store.tasks.get({ taskId: printed.taskId }))).status).toBe("failed");
  });

  it("exits 2, naming the persona, when no such persona exists, and writes no task", async () => {
    agentPersona("coder");
    const out = await run("nobody", "anything");
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/PERSONA_NOT_FOUND: --persona: no persona "nobody"/);
    expect(await withDb((store) => store.tasks.list({}))).toEqual([]);
  });
});

describe("roster run interrupted", () => {
  it("stops the agent's process tree on SIGINT, cancels the task as the user's interruption, and exits 130", async () => {
    const record = join(dir.path, "record.jsonl");
    agentPersona("coder", `  env:\n    FAKE_AGENT_RECORD: ${JSON.stringify(record)}`);
    const child = spawn(process.execPath, [BIN, "run", "--persona", "coder", "--db", db, "--personas", personas, "--json", "Long job [fake:grandchild] [fake:sleep=60000]"], {
      cwd: dir.path,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    const grandchild = await waitUntil(() => readRecord(record).find((r) => typeof r.grandchild === "number")?.grandchild as number | undefined, 30_000);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    const printed = JSON.parse(stdout) as { taskId: number; status: string };
    expect(printed.status).toBe("cancelled");
    await waitUntil(() => !processAlive(grandchild));
    const task = await withDb((store) => store.tasks.get({ taskId: printed.taskId }));
    expect(task.status).toBe("cancelled");
    expect(task.events.find((e) => e.type === "task:cancelled")?.data).toMatchObject({ reason: expect.stringContaining("interrupted by the user") });
  });
});
