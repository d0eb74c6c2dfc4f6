import { execFile } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { git, makeRepo, tempDir } from "./helpers.js";

/**
 * A persona that cannot run (its CLI not found, its workspace's base missing) is its own fault,
 * not its tasks': through `roster start` no task fails and nothing is made for them; the persona
 * is held (its breaker) with the reason named; `roster run` refuses it before writing a task.
 */
const BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../dist/src/cli/bin.js");

let dir: { path: string; cleanup: () => void };
beforeEach(() => {
  dir = tempDir("persona-faults");
});
afterEach(() => dir.cleanup());

function roster(args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir.path, encoding: "utf8", timeout: timeoutMs, killSignal: "SIGINT" }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

function writePersona(command: string, base = "main"): { personas: string; file: string } {
  const personas = join(dir.path, "personas");
  mkdirSync(personas, { recursive: true });
  const file = join(personas, "claude.md");
  writeFileSync(file, `---\nid: claude\nname: claude\nadapter:\n  kind: agent\n  profile: claude\n  command: ${command}\n  workspace:\n    kind: worktree\n    repo: ../repo\n    base: ${base}\nconcurrency: 2\n---\nYou work.\n`);
  return { personas, file };
}

describe("a persona's own fault", () => {
  it("a missing command: roster start warns naming it, and its five tasks stay pending, uncounted, with no worktree or branch; the persona's breaker holds them", async () => {
    const repo = makeRepo(dir.path);
    const { personas, file } = writePersona("./bin/claude");
    const db = join(dir.path, "team.db");
    expect((await roster(["init", "--db", db, "--personas", personas])).code).toBe(0);
    for (let i = 1; i <= 5; i++) expect((await roster(["add", "--db", db, "--persona", "claude", "--title", `Task ${i}`])).code).toBe(0);
    // --exit-when-idle would wait for the held tasks: the start is stopped after a few seconds.
    const started = await roster(["start", "--db", db, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "warn"], 8_000);
    expect(started.stderr + started.stdout).toMatch(/its command \\?"\.\/bin\/claude\\?" cannot be found/);
    expect(started.stderr + started.stdout).toContain(file);
    const store = await openStore({ path: db });
    try {
      const tasks = await store.tasks.list({});
      expect(tasks.map((t) => t.status)).toEqual(["pending", "pending", "pending", "pending", "pending"]);
      expect(tasks.every((t) => t.attempts === 0)).toBe(true);
      const held = tasks.find((t) => t.error !== null)!;
      expect(held.error).toMatchObject({ code: "ADAPTER_NOT_FOUND", details: { failure: "persona", persona: "claude", file, command: "./bin/claude" } });
      expect((await store.economics.breakers())[0]).toMatchObject({ persona: "claude", state: "open" });
    } finally {
      await store.close();
    }
    expect(git(repo, "branch", "--format=%(refname:short)")).toBe("main");
    expect(git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree "))).toEqual([`worktree ${repo}`]);
    expect(existsSync(join(dir.path, "repo.roster-worktrees"))).toBe(false);
  });

  it("roster run refuses a persona whose command or workspace base is missing, naming its file, and writes no task", async () => {
    makeRepo(dir.path);
    const { personas, file } = writePersona("claude-not-installed-here", "develop");
    const db = join(dir.path, "team.db");
    expect((await roster(["init", "--db", db, "--personas", personas])).code).toBe(0);
    const missing = await roster(["run", "--db", db, "--personas", personas, "--persona", "claude", "Do it"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(`ADAPTER_NOT_FOUND: persona "claude" (${file}): its command "claude-not-installed-here" cannot be found on PATH`);
    writePersona(process.execPath, "develop");
    const base = await roster(["run", "--db", db, "--personas", personas, "--persona", "claude", "Do it"]);
    expect(base.code).not.toBe(0);
    expect(base.stderr).toContain(`CONFIG_INVALID: persona "claude" (${file}): workspace.base: "develop" is not a branch`);
    const store = await openStore({ path: db });
    try {
      expect(await store.tasks.list({})).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
