import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { adapterSchema, type AdapterConfig } from "../../src/personas/schema.js";
import type { AdapterContext, AdapterLogger, AdapterTask } from "../../src/adapters/types.js";
import type { DependencyResult } from "../../src/store/types.js";

/** Shared by the agent and workspace tests: the fake CLI, temp repos, tasks and contexts. */
export const FAKE_CLI = resolve(dirname(fileURLToPath(import.meta.url)), "../fixtures/fake-agent-cli.mjs");

export function tempDir(prefix: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), `roster-${prefix}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Whether commit `a` is an ancestor of (or is) `b` in `repo`. */
export function isAncestor(repo: string, a: string, b: string): boolean {
  try {
    git(repo, "merge-base", "--is-ancestor", a, b);
    return true;
  } catch {
    return false;
  }
}

/**
 * A repository made once per test file (makeRepo, then `extend` on it) and copied afresh into a
 * temp folder before each test: `dir` is that folder and `repo` the copy. Registers the hooks.
 */
export function useRepoCopies(prefix: string, extend?: (repo: string) => void): { readonly dir: string; readonly repo: string } {
  let template: { path: string; cleanup: () => void } | undefined;
  let dir: { path: string; cleanup: () => void } | undefined;
  beforeAll(() => {
    template = tempDir(`${prefix}-template`);
    const made = makeRepo(template.path);
    extend?.(made);
  });
  afterAll(() => template?.cleanup());
  beforeEach(() => {
    dir = tempDir(prefix);
    cpSync(join(template!.path, "repo"), join(dir.path, "repo"), { recursive: true });
  });
  afterEach(() => dir?.cleanup());
  return {
    get dir() {
      return dir!.path;
    },
    get repo() {
      return join(dir!.path, "repo");
    },
  };
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, stdio: ["ignore", "pipe", "pipe"] }).toString().trim();
}

/** A real repository with one commit on `main` and a committer configured in its own config. */
export function makeRepo(parent: string, name = "repo"): string {
  const repo = join(parent, name);
  mkdirSync(repo, { recursive: true });
  git(repo, "init", "-q", "-b", "main");
  git(repo, "config", "user.name", "Roster Test");
  git(repo, "config", "user.email", "roster-test@example.invalid");
  git(repo, "config", "commit.gpgsign", "false");
  writeFileSync(join(repo, "README.md"), "# test repo\n");
  git(repo, "add", "README.md");
  git(repo, "commit", "-q", "-m", "base");
  return repo;
}

export function agentConfig(input: Record<string, unknown>): AdapterConfig {
  return adapterSchema.parse({ kind: "agent", profile: "claude", command: FAKE_CLI, ...input });
}

export function makeTask(overrides: Partial<AdapterTask> = {}): AdapterTask {
  return {
    id: 7,
    title: "Add a greeting",
    description: "Write hello to greeting.txt.",
    persona: "implementer",
    payload: null,
    priority: 0,
    parentId: null,
    attempt: 1,
    maxAttempts: 3,
    timeoutMs: 60_000,
    dependencies: [] as DependencyResult[],
    ...overrides,
  };
}

export interface TestContext extends AdapterContext {
  controller: AbortController;
  logs: Array<{ level: string; message: string; data?: Record<string, unknown> }>;
}

export function makeContext(adapter: AdapterConfig, options: { definition?: string; dir?: string | null; id?: string } = {}): TestContext {
  const controller = new AbortController();
  const logs: TestContext["logs"] = [];
  const log =
    (level: string) =>
    (message: string, data?: Record<string, unknown>): void => {
      logs.push({ level, message, ...(data === undefined ? {} : { data }) });
    };
  const logger: AdapterLogger = { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
  return {
    controller,
    logs,
    signal: controller.signal,
    progress: () => undefined,
    logger,
    persona: {
      id: options.id ?? "implementer",
      name: "Implementer",
      definition: options.definition ?? "You are the implementer. PERSONA-DEFINITION-MARKER.",
      adapter,
      dir: options.dir === undefined ? null : options.dir,
    },
  };
}

/** The fake CLI's record file: one JSON object per run. */
export function readRecord(path: string): Array<Record<string, unknown>> {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Resolves when `check` returns a value (polls a file the child writes; no store events exist for it). */
export async function waitUntil<T>(check: () => T | undefined | null | false, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`waitUntil: condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
