import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { git, makeRepo } from "../agent/helpers.js";
import { GEMINI_MODEL, OPENAI_MODEL, type ModelServer, type TrapProxy } from "./model-server.js";
import { describeWithClis, openWorld, closeWorld, runRoster, agentAdapterLines, type World } from "./harness.js";

/**
 * `roster start` with the real CLIs on a small plan: a Claude Code planner returns a
 * plan; a Codex and a Gemini implementer write files through scripted tool calls in
 * their own worktrees; a Claude Code reviewer gets their results. The scripted server
 * tells the personas apart by a marker in each one's definition.
 */
const run = describeWithClis(["claude", "codex", "gemini"]);

let server: ModelServer;
let trap: TrapProxy;
let dir: World["dir"];
beforeAll(async () => {
  ({ server, trap, dir } = await openWorld({ kind: "text", text: "" }, "agent-cli-start"));
});
afterAll(() => closeWorld({ server, trap, dir }));

// Every proxy variable points at the trap: a request for anywhere but 127.0.0.1 is refused and recorded.
const roster = (args: string[]) => runRoster({ trap, dir }, args, 240_000);

run("roster start with the real agent CLIs", () => {
  it("runs a Claude planner's plan: Codex and Gemini implementers commit files in their worktrees, a Claude reviewer gets their results, usage recorded", async () => {
    const repo = makeRepo(dir.path, "app");
    const personas = join(dir.path, "personas");
    mkdirSync(personas);
    const plan = {
      result: "two files in parallel, then a review",
      tasks: [
        { ref: "a", persona: "codex-impl", title: "Write codex.txt", description: "Create codex.txt." },
        { ref: "b", persona: "gemini-impl", title: "Write gemini.txt", description: "Create gemini.txt." },
        { ref: "r", persona: "reviewer", title: "Review both", description: "Review the two branches.", dependsOn: ["a", "b"] },
      ],
    };
    server.setScenario({
      kind: "route",
      routes: [
        { when: "MARKER-PLANNER", then: { kind: "text", text: `Here is the plan.\n\n\`\`\`json\n${JSON.stringify(plan)}\n\`\`\`` } },
        { when: "MARKER-CODEX", then: { kind: "write", path: "codex.txt", content: "written by codex\n", text: "codex.txt added" } },
        { when: "MARKER-GEMINI", then: { kind: "write", path: "gemini.txt", content: "written by gemini\n", text: "gemini.txt added" } },
        { when: "MARKER-REVIEWER", then: { kind: "text", text: "Both branches look right." } },
      ],
      otherwise: { kind: "text", text: "(unscripted)" },
    });
    const agent = (cli: string, extra: string) =>
      [...agentAdapterLines(cli, server.url), extra].join("\n");
    const worktree = "  workspace:\n    kind: worktree\n    repo: ../app\n    base: main\n    keep: on-failure\n    autoCommit: true";
    const write = (id: string, adapter: string, body: string) =>
      writeFileSync(join(personas, `${id}.md`), `---\nid: ${id}\nname: ${id}\n${adapter}\ntimeoutMs: 120000\nretry:\n  maxAttempts: 1\n---\n${body}\n`);
    write("planner", agent("claude", "  role: planner\n  cwd: ../app\n  args: [\"--permission-mode\", \"plan\"]"), "You plan. MARKER-PLANNER");
    write("codex-impl", agent("codex", worktree), "You implement. MARKER-CODEX");
    write("gemini-impl", agent("gemini", worktree), "You implement. MARKER-GEMINI");
    write("reviewer", agent("claude", ""), "You review. MARKER-REVIEWER");
    const db = join(dir.path, "team.db");

    expect((await roster(["init", "--db", db, "--personas", personas])).code).toBe(0);
    expect((await roster(["add", "--db", db, "--persona", "planner", "--title", "Add two files"])).code).toBe(0);
    const started = await roster(["start", "--db", db, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "warn"]);
    expect(started.code, started.stderr).toBe(0);

    const store = await openStore({ path: db });
    let owner = "";
    try {
      owner = (await store.maintenance.identity()).id;
      const tasks = await store.tasks.list({});
      expect(tasks.map((t) => [t.id, t.persona, t.status])).toEqual([
        [1, "planner", "completed"],
        [2, "codex-impl", "completed"],
        [3, "gemini-impl", "completed"],
        [4, "reviewer", "completed"],
      ]);
      const result = (id: number) => tasks.find((t) => t.id === id)!.result as Record<string, any>;
      expect(result(1).text).toBe("two files in parallel, then a review");
      expect(result(2)).toMatchObject({ text: "codex.txt added", usage: { model: OPENAI_MODEL } });
      expect(result(3)).toMatchObject({ text: "gemini.txt added", usage: { model: GEMINI_MODEL } });
      expect(result(4).text).toBe("Both branches look right.");
      for (const id of [1, 2, 3, 4]) expect(result(id).usage.outputTokens).toBeGreaterThan(0);
      expect(git(repo, "show", `${result(2).workspace.branch}:codex.txt`)).toBe("written by codex");
      expect(git(repo, "show", `${result(3).workspace.branch}:gemini.txt`)).toBe("written by gemini");
    } finally {
      await store.close();
    }
    // The reviewer's prompt carried both implementers' results and branches.
    const review = server.requests.find((r) => JSON.stringify(r.body).includes("MARKER-REVIEWER"));
    const prompt = JSON.stringify(review!.body);
    expect(prompt).toContain("codex.txt added");
    expect(prompt).toContain(`roster/${owner}/task-3-a1`);
    expect(trap.seen).toEqual([]);
  });
});
