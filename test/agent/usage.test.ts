import { describe, expect, it } from "vitest";
import { readUsage } from "../../src/adapters/agent/usage.js";

describe("agent CLI usage", () => {
  it("reads claude's tokens by kind, its model and its cost", () => {
    const stdout = JSON.stringify({
      type: "result",
      num_turns: 2,
      total_cost_usd: 0.0224,
      usage: { input_tokens: 2400, cache_creation_input_tokens: 600, cache_read_input_tokens: 4800, output_tokens: 170 },
      modelUsage: { "claude-opus-4-8[1m]": { inputTokens: 2400 } },
    });
    expect(readUsage("claude", stdout)).toEqual({ model: "claude-opus-4-8", inputTokens: 2400, outputTokens: 170, cacheReadTokens: 4800, cacheWriteTokens: 600, reasoningTokens: 0, costUsd: 0.0224, turns: 2 });
  });

  it("sums codex's turn.completed usage, taking the cached tokens out of its input", () => {
    const turn = { type: "turn.completed", usage: { input_tokens: 3000, cached_input_tokens: 2048, cache_write_input_tokens: 0, output_tokens: 180, reasoning_output_tokens: 64 } };
    const stdout = [{ type: "thread.started", thread_id: "t" }, turn, turn].map((l) => JSON.stringify(l)).join("\n");
    expect(readUsage("codex", stdout)).toEqual({ model: null, inputTokens: 1904, outputTokens: 360, cacheReadTokens: 4096, cacheWriteTokens: 0, reasoningTokens: 128, costUsd: null, turns: 2 });
  });

  it("reads gemini's stats, counting its thoughts as output", () => {
    const stdout = JSON.stringify({
      response: "ok",
      stats: { models: { "gemini-2.5-flash": { api: { totalRequests: 2 }, tokens: { input: 1600, prompt: 2800, candidates: 160, total: 3008, cached: 1200, thoughts: 48, tool: 0 } } } },
    });
    expect(readUsage("gemini", stdout)).toEqual({ model: "gemini-2.5-flash", inputTokens: 1600, outputTokens: 208, cacheReadTokens: 1200, cacheWriteTokens: 0, reasoningTokens: 48, costUsd: null, turns: 2 });
  });

  it("is null when the output reports no usage", () => {
    expect(readUsage("claude", "not json")).toBeNull();
    expect(readUsage("codex", JSON.stringify({ type: "turn.started" }))).toBeNull();
    expect(readUsage(null, "{}")).toBeNull();
  });
});
