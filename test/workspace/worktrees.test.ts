import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { workspaceSchema } from "../../src/workspace/config.js";
import { createWorktree, finishWorktree, listRosterWorktrees, pruneStaleWorktrees } from "../../src/workspace/worktrees.js";
import { git, makeRepo, tempDir } from "../agent/helpers.js";

let template: { path: string; cleanup: () => void };
let dir: { path: string; cleanup: () => void };
let repo: string;

// One real repository made with git, copied per test (a copy is a whole repository; it saves the git calls).
beforeAll(() => {
  template = tempDir("worktrees-template");
  makeRepo(template.path);
});
afterAll(() => template.cleanup());

beforeEach(() => {
  dir = tempDir("worktrees");
  repo = join(dir.path, "repo");
  cpSync(join(template.path, "repo"), repo, { recursive: true });
});
afterEach(() => dir.cleanup());

const worktreesDir = () => join(dir.path, "repo.roster-worktrees");
const workspace = (keep: "always" | "on-failure" | "never") => ({ kind: "worktree", repo, base: "main", keep });
const branches = () => git(repo, "branch", "--format=%(refname:short)").split("\n").sort();
const registered = () =>
  git(repo, "worktree", "list", "--porcelain")
    .split("\n")
    .filter((l) => l.startsWith("worktree "))
    .map((l) => l.slice("worktree ".length));

describe("worktree manager: creation under load and pruning at start", () => {
  it("creates many worktrees of one repository at once without a lock race", async () => {
    const config = workspaceSchema.parse(workspace("always"));
    const made = await Promise.all(Array.from({ length: 8 }, (_, i) => createWorktree(config, 100 + i, 1)));
    expect(new Set(made.map((w) => w.path)).size).toBe(8);
    expect(registered()).toHaveLength(9);
  });

  it("prunes at start the worktrees a crash left, but not those of running attempts or kept on purpose", async () => {
    const config = workspaceSchema.parse(workspace("always"));
    // A crash: three attempts had worktrees and nobody finished them.
    for (const id of [1, 2, 3]) await createWorktree(config, id, 1);
    // An attempt that ended normally and whose worktree was kept for inspection.
    await finishWorktree(await createWorktree(config, 4, 1), { keep: "always", succeeded: true });
    const result = await pruneStaleWorktrees({ config, isRunning: (taskId, attempt) => taskId === 2 && attempt === 1 });
    expect(result.removed.sort()).toEqual([join(worktreesDir(), "task-1-a1"), join(worktreesDir(), "task-3-a1")]);
    expect(registered().sort()).toEqual([repo, join(worktreesDir(), "task-2-a1"), join(worktreesDir(), "task-4-a1")].sort());
    expect(existsSync(join(worktreesDir(), "task-1-a1"))).toBe(false);
    expect(branches()).toEqual(["main", "roster/task-1-a1", "roster/task-2-a1", "roster/task-3-a1", "roster/task-4-a1"]);
  });

  it("prunes a worktree whose folder is gone and a half-made folder git does not know", async () => {
    const config = workspaceSchema.parse(workspace("always"));
    const gone = await createWorktree(config, 1, 1);
    rmSync(gone.path, { recursive: true, force: true });
    mkdirSync(join(worktreesDir(), "task-9-a1"));
    expect((await listRosterWorktrees(config)).map((w) => [w.taskId, w.registered]).sort()).toEqual([
      [1, true],
      [9, false],
    ]);
    await pruneStaleWorktrees({ config, isRunning: () => false });
    expect(registered()).toEqual([repo]);
    expect(existsSync(join(worktreesDir(), "task-9-a1"))).toBe(false);
  });

  it("also removes kept worktrees when asked to include them", async () => {
    const config = workspaceSchema.parse(workspace("always"));
    await finishWorktree(await createWorktree(config, 4, 1), { keep: "always", succeeded: true });
    const result = await pruneStaleWorktrees({ config, isRunning: () => false, includeKept: true });
    expect(result.removed).toEqual([join(worktreesDir(), "task-4-a1")]);
  });
});

describe("worktree lock across processes", () => {
  it("lets several processes create worktrees of one repository at once", async () => {
    const { execFile } = await import("node:child_process");
    const { pathToFileURL } = await import("node:url");
    const { dirname: dirOf, resolve: resolvePath } = await import("node:path");
    const { fileURLToPath } = await import("node:url");
    const built = pathToFileURL(resolvePath(dirOf(fileURLToPath(import.meta.url)), "../../dist/src/workspace/worktrees.js")).href;
    const script = (first: number) =>
      `const { createWorktree } = await import(${JSON.stringify(built)});` +
      `const config = { kind: "worktree", repo: ${JSON.stringify(repo)}, base: "main", keep: "always", branchPrefix: "roster/" };` +
      `await Promise.all([createWorktree(config, ${first}, 1), createWorktree(config, ${first + 1}, 1)]);`;
    const runOne = (first: number) =>
      new Promise<void>((done, fail) =>
        execFile(process.execPath, ["--input-type=module", "-e", script(first)], (error, _out, stderr) => (error ? fail(new Error(stderr || error.message)) : done())),
      );
    await Promise.all([runOne(10), runOne(20), runOne(30)]);
    expect(registered()).toHaveLength(7);
    expect(branches()).toEqual(["main", ...[10, 11, 20, 21, 30, 31].map((id) => `roster/task-${id}-a1`)]);
  });
});
