import { describe, expect, it } from "vitest";
import { resolveProfile, type AgentAdapterConfig } from "../../src/adapters/agent/launch.js";
import { interpretRun } from "../../src/adapters/agent/output.js";
import { UsageStream } from "../../src/adapters/agent/stream-usage.js";
import { totalOf } from "../../src/adapters/agent/codex-rollout.js";
import { adapterSchema } from "../../src/personas/schema.js";

/**
 * Claude Code's stream-json, in the shape the pinned version prints against the scripted model server
 * (test/agent-cli/streaming-budget.test.ts runs the real one): an assistant event per content block of a
 * reply, each with the reply's message_start usage (output 1), then the result with the final figures.
 */
const usage = { input_tokens: 1200, cache_creation_input_tokens: 300, cache_read_input_tokens: 2400, output_tokens: 1 };
const assistant = (id: string, block: unknown) => ({ type: "assistant", message: { id, model: "claude-opus-4-8", content: [block], usage }, session_id: "s" });
const result = {
  type: "result",
  subtype: "success",
  is_error: false,
  result: "DONE",
  session_id: "s",
  num_turns: 2,
  total_cost_usd: 0.0224,
  usage: { input_tokens: 2400, cache_creation_input_tokens: 600, cache_read_input_tokens: 4800, output_tokens: 170 },
  modelUsage: { "claude-opus-4-8[1m]": {} },
};
const events = [
  { type: "system", subtype: "init", session_id: "s" },
  assistant("m1", { type: "text", text: "writing" }),
  assistant("m1", { type: "tool_use", id: "t1", name: "Write", input: {} }),
  { type: "user", message: { content: [{ type: "tool_result", tool_use_id: "t1" }] } },
  assistant("m2", { type: "text", text: "DONE" }),
  result,
];

describe("usage read from an agent CLI's stream", () => {
  it("sums claude's replies once each by message id as they come, then takes the result's figures", () => {
    const stream = new UsageStream("claude");
    const totals = events.map((e) => stream.push(JSON.stringify(e)));
    expect(totals[0]).toBeNull();
    expect(totals[1]).toMatchObject({ inputTokens: 1200, outputTokens: 1, cacheReadTokens: 2400, cacheWriteTokens: 300, costUsd: null, turns: 1 });
    // The second block of reply m1 adds nothing.
    expect(totals[2]).toMatchObject({ inputTokens: 1200, turns: 1 });
    expect(totals[3]).toBeNull();
    expect(totals[4]).toMatchObject({ inputTokens: 2400, outputTokens: 2, cacheReadTokens: 4800, cacheWriteTokens: 600, turns: 2, model: "claude-opus-4-8" });
    expect(totals[5]).toEqual({ model: "claude-opus-4-8", inputTokens: 2400, outputTokens: 170, cacheReadTokens: 4800, cacheWriteTokens: 600, reasoningTokens: 0, costUsd: 0.0224, turns: 2 });
    expect(stream.push("not json")).toBeNull();
  });

  it("streams nothing for codex and gemini, whose stdout holds usage only at the end", () => {
    expect(new UsageStream("codex").streams).toBe(false);
    expect(new UsageStream("gemini").streams).toBe(false);
    expect(new UsageStream("codex").push(JSON.stringify({ type: "turn.completed", usage: { input_tokens: 5 } }))).toBeNull();
  });

  it("reads claude's answer, session and usage from stream-json lines, and from the array that --output-format json --verbose prints", () => {
    const claude = resolveProfile(adapterSchema.parse({ kind: "agent", profile: "claude" }) as AgentAdapterConfig);
    const lines = events.map((e) => JSON.stringify(e)).join("\n");
    for (const stdout of [lines, JSON.stringify(events)]) {
      const answer = interpretRun(claude, { command: "claude", exitCode: 0, signal: null, stdout, stderr: "" });
      expect(answer).toMatchObject({ text: "DONE", sessionId: "s", usage: { inputTokens: 2400, outputTokens: 170, costUsd: 0.0224 } });
    }
  });
});

describe("usage read from Codex's session file", () => {
  it("maps a token_count event's running total as the final figures are mapped (cached input taken out of input)", () => {
    const line = JSON.stringify({
      type: "event_msg",
      payload: {
        type: "token_count",
        info: { total_token_usage: { input_tokens: 4500, cached_input_tokens: 3072, cache_write_input_tokens: 0, output_tokens: 270, reasoning_output_tokens: 96, total_tokens: 4770 }, last_token_usage: {} },
      },
    });
    expect(totalOf(line, "gpt-5.5")).toEqual({ model: "gpt-5.5", inputTokens: 1428, outputTokens: 270, cacheReadTokens: 3072, cacheWriteTokens: 0, reasoningTokens: 96, costUsd: null, turns: null });
    expect(totalOf(JSON.stringify({ type: "event_msg", payload: { type: "token_count", info: null } }), null)).toBeNull();
    expect(totalOf(JSON.stringify({ type: "response_item", payload: { type: "message" } }), null)).toBeNull();
  });
});
