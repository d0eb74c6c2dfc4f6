import { describe, expect, it } from "vitest";
import { resolveProfile, type AgentAdapterConfig } from "../../src/adapters/agent/launch.js";
import { interpretRun, type CliRun } from "../../src/adapters/agent/output.js";
import { RosterError } from "../../src/errors.js";
import { adapterSchema } from "../../src/personas/schema.js";

const profile = (input: Record<string, unknown>) => resolveProfile(adapterSchema.parse({ kind: "agent", ...input }) as AgentAdapterConfig);
const run = (over: Partial<CliRun>): CliRun => ({ command: "agent", exitCode: 0, signal: null, stdout: "", stderr: "", ...over });

function failure(fn: () => unknown): RosterError {
  try {
    fn();
  } catch (error) {
    if (error instanceof RosterError) return error;
    throw error;
  }
  throw new Error("expected a RosterError");
}

describe("reading agent CLI output", () => {
  it("takes claude's answer, session id and cost from its JSON", () => {
    const stdout = JSON.stringify({ type: "result", subtype: "success", is_error: false, result: "all done", session_id: "s1", total_cost_usd: 0.5, num_turns: 3 });
    expect(interpretRun(profile({ profile: "claude" }), run({ stdout }))).toEqual({
      text: "all done",
      sessionId: "s1",
      meta: { costUsd: 0.5, numTurns: 3, subtype: "success" },
      usage: null,
    });
  });

  it("takes codex's last agent message from its JSONL events", () => {
    const lines = [
      { type: "thread.started", thread_id: "t1" },
      { type: "item.completed", item: { type: "agent_message", text: "first" } },
      { type: "item.completed", item: { type: "command_execution", text: "ls" } },
      { type: "item.completed", item: { type: "agent_message", text: "final" } },
      { type: "turn.completed" },
    ];
    const answer = interpretRun(profile({ profile: "codex" }), run({ stdout: `${lines.map((l) => JSON.stringify(l)).join("\n")}\nnot json\n` }));
    expect(answer).toMatchObject({ text: "final", sessionId: "t1" });
  });

  it("takes gemini's response", () => {
    expect(interpretRun(profile({ profile: "gemini" }), run({ stdout: '{"response":"ok","stats":{}}' })).text).toBe("ok");
  });

  it("fails retryable, marked rate limited, when claude reports its usage limit", () => {
    const stdout = JSON.stringify({ type: "result", subtype: "success", is_error: true, result: "Claude AI usage limit reached|1700000000" });
    const error = failure(() => interpretRun(profile({ profile: "claude" }), run({ exitCode: 1, stdout })));
    expect(error.code).toBe("ADAPTER_FAILED");
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ rateLimited: true, exitCode: 1 });
  });

  it("fails retryable on a 429 in stderr even when the profile lists the exit code as non-retryable", () => {
    const error = failure(() => interpretRun(profile({ profile: "gemini", nonRetryableExitCodes: [1] }), run({ exitCode: 1, stderr: "Error: 429 Too Many Requests" })));
    expect(error.retryable).toBe(true);
    expect(error.details?.rateLimited).toBe(true);
  });

  it("reports a custom CLI's rate limit as a provider limit with the retry-after it printed, and a known CLI's usage limit without a reset as retryable", () => {
    const error = failure(() => interpretRun(profile({ profile: "custom", command: "my-agent" }), run({ exitCode: 1, stderr: "HTTP 429 Too Many Requests, retry after 60s" })));
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ failure: "rate-limit", retryAfterMs: 60_000, rateLimited: true, exitCode: 1 });
    expect(error.message).toMatch(/\(rate limited; retry after 60 s: provider paused, attempt not counted\): HTTP 429/);
    expect(error.message).not.toMatch(/will retry/);
    const codex = JSON.stringify({ type: "error", message: "You’ve hit your usage limit. Upgrade to Pro or try again later." });
    const usage = failure(() => interpretRun(profile({ profile: "codex" }), run({ exitCode: 1, stdout: codex })));
    expect(usage.retryable).toBe(true);
    expect(usage.details).toMatchObject({ failure: "usage-limit" });
    expect(usage.message).toMatch(/\(usage limit reached; no reset time given: provider paused, attempt not counted\)/);
    expect(usage.message).not.toMatch(/not retryable/);
  });

  it("fails non-retryable on bad credentials", () => {
    const stdout = JSON.stringify({ type: "result", is_error: true, result: "Invalid API key · Please run /login" });
    const error = failure(() => interpretRun(profile({ profile: "claude" }), run({ exitCode: 1, stdout })));
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/Invalid API key/);
  });

  it("fails non-retryable on an exit code the profile says cannot be retried", () => {
    const error = failure(() => interpretRun(profile({ profile: "gemini" }), run({ exitCode: 42, stderr: "bad arguments" })));
    expect(error.retryable).toBe(false);
  });

  it("fails retryable on any other non-zero exit, with the tail of stderr in the message", () => {
    const stderr = `${"noise\n".repeat(2000)}the real reason\n`;
    const error = failure(() => interpretRun(profile({ profile: "claude" }), run({ exitCode: 2, stderr })));
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/exited with code 2/);
    expect(error.message).toMatch(/the real reason$/);
    expect(error.message.length).toBeLessThan(5_000);
  });

  it("fails with ADAPTER_OUTPUT_INVALID when the CLI exits 0 but prints no readable answer", () => {
    const error = failure(() => interpretRun(profile({ profile: "claude" }), run({ stdout: "Welcome!" })));
    expect(error.code).toBe("ADAPTER_OUTPUT_INVALID");
    expect(error.message).toMatch(/not JSON/);
  });

  it("reads a custom CLI's JSON answer at its resultPath", () => {
    const p = profile({ profile: "custom", command: "x", output: "json", resultPath: "data.answer" });
    expect(interpretRun(p, run({ stdout: '{"data":{"answer":"42"}}' })).text).toBe("42");
  });
});
