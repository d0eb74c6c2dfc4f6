import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runAgent } from "../../src/adapters/agent/index.js";
import { RosterError } from "../../src/errors.js";
import { agentConfig, makeContext, makeTask, processAlive, readRecord, tempDir, waitUntil } from "./helpers.js";

let dir: { path: string; cleanup: () => void };
let record: string;

beforeEach(() => {
  dir = tempDir("agent");
  record = join(dir.path, "record.jsonl");
});
afterEach(() => dir.cleanup());

/** An agent persona on the fake CLI that records what it received. */
const persona = (input: Record<string, unknown> = {}) => agentConfig({ cwd: dir.path, env: { FAKE_AGENT_RECORD: record }, ...input });

async function failureOf(promise: Promise<unknown>): Promise<RosterError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RosterError) return error;
    throw error;
  }
  throw new Error("expected the attempt to fail");
}

describe("agent adapter with a fake CLI", () => {
  it("gives the CLI a prompt with the persona definition, the task and its dependencies' results", async () => {
    const task = makeTask({
      dependencies: [
        { id: 3, title: "Design the API", persona: "planner", status: "completed", result: "DEP-RESULT-ONE" },
        { id: 4, title: "Write the schema", persona: "implementer", status: "completed", result: { text: "DEP-RESULT-TWO", workspace: { branch: "roster/task-4-a1" } } },
      ],
    });
    await runAgent(task, makeContext(persona()));
    const [run] = readRecord(record);
    const prompt = run!.prompt as string;
    expect(prompt).toContain("PERSONA-DEFINITION-MARKER");
    expect(prompt).toContain("# Task 7: Add a greeting");
    expect(prompt).toContain("Write hello to greeting.txt.");
    expect(prompt).toContain("### Task 3: Design the API (planner, completed)\nDEP-RESULT-ONE");
    expect(prompt).toContain("DEP-RESULT-TWO");
    expect(prompt).toContain("roster/task-4-a1");
    expect(run!.argv).toEqual(["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits"]);
  });

  it("passes arguments and an argument prompt to the CLI literally: spaces, quotes, $(...), backticks", async () => {
    const tricky = `two words "double" 'single' $(touch PWNED) \`touch PWNED2\` ; echo hi | cat > out *`;
    const config = persona({ args: ["--append-system-prompt", tricky, "--max-turns", "3"], promptVia: "argument" });
    const task = makeTask({ title: `Title with $(touch PWNED3) and "quotes"`, description: "" });
    await runAgent(task, makeContext(config));
    const [run] = readRecord(record);
    const argv = run!.argv as string[];
    expect(argv.slice(0, 10)).toEqual(["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits", "--append-system-prompt", tricky, "--max-turns", "3"]);
    expect(argv).toHaveLength(11);
    expect(argv[10]).toBe(run!.prompt);
    expect(argv[10]).toContain(`# Task 7: Title with $(touch PWNED3) and "quotes"`);
    for (const name of ["PWNED", "PWNED2", "PWNED3", "out"]) expect(existsSync(join(dir.path, name))).toBe(false);
  });

  it("returns the CLI's answer, session and cost as the task result", async () => {
    const output = await runAgent(makeTask(), makeContext(persona()));
    expect(output.tasks).toBeUndefined();
    expect(output.result).toMatchObject({ text: "done: Add a greeting", profile: "claude", costUsd: 0.0012 });
    expect((output.result as { sessionId: string }).sessionId).toMatch(/^fake-/);
  });

  it("sets the task's coordinates in the CLI's environment", async () => {
    await runAgent(makeTask({ id: 12, attempt: 2 }), makeContext(persona(), { id: "implementer" }));
    expect(readRecord(record)[0]!.env).toMatchObject({ ROSTER_TASK_ID: "12", ROSTER_ATTEMPT: "2", ROSTER_PERSONA: "implementer" });
  });

  it("turns a planner's JSON answer into child tasks with dependencies", async () => {
    const output = await runAgent(makeTask({ description: "Plan the feature. [fake:plan]" }), makeContext(persona({ role: "planner" })));
    expect(output.result).toMatchObject({ text: "Two parts in parallel, then a review.", profile: "claude" });
    expect(output.tasks?.map((t) => ({ ref: t.ref, persona: t.persona, dependsOn: t.dependsOn ?? [] }))).toEqual([
      { ref: "api", persona: "implementer", dependsOn: [] },
      { ref: "ui", persona: "implementer", dependsOn: [] },
      { ref: "review", persona: "reviewer", dependsOn: ["api", "ui"] },
    ]);
    expect(readRecord(record)[0]!.prompt).toContain('"dependsOn"');
  });

  it("tells a planner the shape of a plan but not a worker", async () => {
    await runAgent(makeTask(), makeContext(persona()));
    expect(readRecord(record)[0]!.prompt).not.toContain("You are planning");
  });

  it.each(["claude", "codex", "gemini"] as const)("fails retryable when the %s CLI is rate limited", async (profile) => {
    const error = await failureOf(runAgent(makeTask({ description: "[fake:rate-limit]" }), makeContext(persona({ profile }))));
    expect(error.code).toBe("ADAPTER_FAILED");
    expect(error.retryable).toBe(true);
    expect(error.details?.rateLimited).toBe(true);
  });

  it.each(["codex", "gemini"] as const)("reads the answer of the %s CLI's own output shape", async (profile) => {
    const output = await runAgent(makeTask(), makeContext(persona({ profile })));
    expect(output.result).toMatchObject({ text: "done: Add a greeting", profile });
  });

  it("fails retryable on another non-zero exit, with the tail of stderr", async () => {
    const error = await failureOf(runAgent(makeTask({ description: "[fake:exit=2]" }), makeContext(persona())));
    expect(error.retryable).toBe(true);
    expect(error.details?.rateLimited).toBe(false);
    expect(error.message).toMatch(/exited with code 2/);
    expect(error.message).toMatch(/fake-agent: giving up/);
  });

  it("fails non-retryable on bad credentials", async () => {
    const error = await failureOf(runAgent(makeTask({ description: "[fake:auth]" }), makeContext(persona())));
    expect(error.retryable).toBe(false);
  });

  it("fails non-retryable where the persona says an exit code cannot be retried", async () => {
    const error = await failureOf(runAgent(makeTask({ description: "[fake:exit=9]" }), makeContext(persona({ nonRetryableExitCodes: [9] }))));
    expect(error.retryable).toBe(false);
    expect(error.details?.exitCode).toBe(9);
  });

  it("fails non-retryable when claude hits its turn limit", async () => {
    const error = await failureOf(runAgent(makeTask({ description: "[fake:max-turns]" }), makeContext(persona())));
    expect(error.retryable).toBe(false);
  });

  it("fails non-retryable, naming the command, when the CLI is not installed", async () => {
    const error = await failureOf(runAgent(makeTask(), makeContext(persona({ command: "roster-no-such-agent-cli" }))));
    expect(error.code).toBe("ADAPTER_NOT_FOUND");
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/roster-no-such-agent-cli/);
  });

  it("stops the CLI and everything it started when the attempt is aborted", async () => {
    const ctx = makeContext(persona({ killGraceMs: 1_000 }));
    const running = runAgent(makeTask({ description: "[fake:grandchild] [fake:sleep=30000]" }), ctx);
    const grandchild = await waitUntil(() => readRecord(record).find((r) => typeof r.grandchild === "number")?.grandchild as number | undefined);
    expect(processAlive(grandchild)).toBe(true);
    ctx.controller.abort(new RosterError("TIMEOUT", "attempt timed out"));
    const error = await failureOf(running);
    expect(error.code).toBe("TIMEOUT");
    await waitUntil(() => !processAlive(grandchild));
    expect(processAlive(grandchild)).toBe(false);
  });
});
