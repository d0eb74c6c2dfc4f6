import type { Json } from "../../store/types.js";
import type { AgentDialect } from "./profiles.js";
import type { NormalUsage } from "../../store/usage-values.js";
import { readUsage } from "./usage.js";

/**
 * An agent CLI's usage read from its output while it runs, line by line, as a
 * running total (docs/economics.md, "Streaming usage"). What each CLI prints as it
 * goes (measured with the versions in docs/agent-clis.md against the scripted model
 * server):
 *
 * - Claude Code, `--output-format stream-json --verbose`: an `assistant` event per
 *   content block of each model reply, carrying that reply's `message.usage` (the
 *   same usage on every block of one reply, so replies are counted once by
 *   `message.id`). That usage is the one the reply's `message_start` carried: input
 *   and cache tokens are exact, output tokens are those known at the start (often
 *   1), so the running total undercounts output until the final `result` event,
 *   whose figures (and `total_cost_usd`) then replace it.
 * - Codex, `exec --json`: one `turn.completed` with the turn's usage, at the end of
 *   the run; its per-request `token_count` events go only to its session file, which
 *   ./codex-rollout.ts follows.
 * - Gemini CLI: its usage is in the final `stats` only (`json` and `stream-json`
 *   alike), so it is known at the end.
 */
export class UsageStream {
  private readonly replies = new Map<string, NormalUsage>();
  private final: NormalUsage | null = null;

  constructor(private readonly dialect: AgentDialect | null) {}

  /** Whether this dialect's stdout carries usage before the end. */
  get streams(): boolean {
    return this.dialect === "claude";
  }

  /** Takes one stdout line; returns the new running total when the line changed it, else null. */
  push(line: string): NormalUsage | null {
    if (this.dialect !== "claude" || !line.startsWith("{")) return null;
    let doc: Json;
    try {
      doc = JSON.parse(line) as Json;
    } catch {
      return null;
    }
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return null;
    if (doc.type === "result") {
      this.final = readUsage("claude", line);
      return this.final;
    }
    if (doc.type !== "assistant" || this.final !== null) return null;
    const message = doc.message;
    if (message === null || typeof message !== "object" || Array.isArray(message)) return null;
    const u = message.usage;
    if (u === null || typeof u !== "object" || Array.isArray(u)) return null;
    const id = typeof message.id === "string" ? message.id : `#${this.replies.size}`;
    const reply: NormalUsage = {
      model: typeof message.model === "string" ? message.model : null,
      inputTokens: num(u.input_tokens),
      outputTokens: num(u.output_tokens),
      cacheReadTokens: num(u.cache_read_input_tokens),
      cacheWriteTokens: num(u.cache_creation_input_tokens),
      reasoningTokens: 0,
      costUsd: null,
      turns: null,
    };
    const before = this.replies.get(id);
    // A later block of the same reply may carry a larger output count: keep the largest of each field.
    this.replies.set(id, before === undefined ? reply : maxOf(before, reply));
    return this.total();
  }

  /** The running total: the final figures once printed, else the sum over the replies seen. */
  total(): NormalUsage | null {
    if (this.final !== null) return this.final;
    if (this.replies.size === 0) return null;
    const sum: NormalUsage = { model: null, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, costUsd: null, turns: this.replies.size };
    for (const r of this.replies.values()) {
      sum.model = r.model ?? sum.model;
      sum.inputTokens += r.inputTokens;
      sum.outputTokens += r.outputTokens;
      sum.cacheReadTokens += r.cacheReadTokens;
      sum.cacheWriteTokens += r.cacheWriteTokens;
    }
    return sum;
  }
}

function maxOf(a: NormalUsage, b: NormalUsage): NormalUsage {
  return {
    ...a,
    model: b.model ?? a.model,
    inputTokens: Math.max(a.inputTokens, b.inputTokens),
    outputTokens: Math.max(a.outputTokens, b.outputTokens),
    cacheReadTokens: Math.max(a.cacheReadTokens, b.cacheReadTokens),
    cacheWriteTokens: Math.max(a.cacheWriteTokens, b.cacheWriteTokens),
  };
}

function num(value: Json | undefined): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.round(value) : 0;
}
