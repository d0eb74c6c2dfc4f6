import { cpSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parsePersonaFile, toPersonaUpsert } from "../../src/personas/load.js";
import type { Persona } from "../../src/personas/schema.js";
import { openStore, type Store } from "../../src/store/index.js";
import { workspaceSchema } from "../../src/workspace/config.js";
import { pruneWorkspacesAtStart } from "../../src/workspace/startup.js";
import { createWorktree } from "../../src/workspace/worktrees.js";
import { makeRepo, tempDir } from "../agent/helpers.js";

let template: { path: string; cleanup: () => void };
let dir: { path: string; cleanup: () => void };
let repo: string;
let store: Store;
let persona: Persona;
const T0 = 1_700_000_000_000;

beforeAll(() => {
  template = tempDir("startup-template");
  makeRepo(template.path);
});
afterAll(() => template.cleanup());

beforeEach(async () => {
  dir = tempDir("startup");
  repo = join(dir.path, "repo");
  cpSync(join(template.path, "repo"), repo, { recursive: true });
  const personas = join(dir.path, "personas");
  mkdirSync(personas);
  const file = join(personas, "coder.md");
  const text = "---\nid: coder\nname: Coder\nadapter:\n  kind: agent\n  profile: claude\n  workspace:\n    kind: worktree\n    repo: ../repo\n    base: main\n---\nYou code.\n";
  writeFileSync(file, text);
  persona = parsePersonaFile(file, text);
  store = await openStore({ path: join(dir.path, "roster.db"), now: T0 });
  await store.personas.sync({ personas: [toPersonaUpsert(persona)], now: T0 });
});
afterEach(async () => {
  await store.close();
  dir.cleanup();
});

describe("prune at start against the database", () => {
  it("keeps the worktrees of attempts under a live lease and removes those of expired, never claimed or unknown attempts", async () => {
    const { ids } = await store.tasks.enqueue({ tasks: [1, 2, 3].map((n) => ({ persona: "coder", title: `t${n}` })), now: T0 });
    const agent = await store.agents.register({ name: "sup", kind: "supervisor", heartbeatTimeoutMs: 60_000, now: T0 });
    // Task 1: claimed with a long lease. Task 2: claimed with a lease that is over by `now`. Task 3: never claimed.
    await store.tasks.claim({ persona: "coder", agentId: agent.id, limit: 1, leaseMs: 3_600_000, now: T0 });
    await store.tasks.claim({ persona: "coder", agentId: agent.id, limit: 1, leaseMs: 1_000, now: T0 });
    const config = { ...workspaceSchema.parse({ kind: "worktree", repo, base: "main" }), owner: (await store.maintenance.identity()).id };
    const paths = await Promise.all([...ids.map((id) => createWorktree(config, id, 1)), createWorktree(config, 999, 1)]).then((w) => w.map((x) => x.path));
    // Another database's worktree of a task with the same id, and one named as before databases had identities: not this database's.
    const others = await Promise.all([createWorktree({ ...config, owner: "rother" }, ids[1]!, 1), createWorktree({ ...config, owner: "" }, ids[1]!, 1)]);
    const reports = await pruneWorkspacesAtStart({ store, personas: [persona], now: T0 + 60_000 });
    expect(reports).toHaveLength(1);
    expect(reports[0]!.kept).toEqual([paths[0]]);
    expect(reports[0]!.removed.sort()).toEqual(paths.slice(1).sort());
    expect(paths.map((p) => existsSync(p))).toEqual([true, false, false, false]);
    expect(others.map((w) => existsSync(w.path))).toEqual([true, true]);
  });

  it("reports a repository it cannot reach without stopping", async () => {
    const broken = { ...persona, id: "broken", adapter: { ...persona.adapter, workspace: { kind: "worktree" as const, repo: join(dir.path, "missing"), base: "main", keep: "on-failure" as const, branchPrefix: "roster/" } } } as Persona;
    const reports = await pruneWorkspacesAtStart({ store, personas: [broken, persona], now: T0 });
    expect(reports.map((r) => [r.personas, r.error?.message ?? null])).toEqual([
      [["broken"], expect.stringMatching(/workspace\.repo: .*missing does not exist/)],
      [["coder"], null],
    ]);
  });
});
