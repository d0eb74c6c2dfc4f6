import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Json } from "../../store/types.js";
import type { NormalUsage } from "../../store/usage-values.js";

/** How often a running Codex session's file is read for new usage, in ms. */
export const ROLLOUT_POLL_MS_DEFAULT = 250;

/**
 * Codex's usage while it runs. `codex exec --json` prints usage only in its final
 * `turn.completed`; its per-request `token_count` events (with the session's running
 * `total_token_usage`) go to its session file, `$CODEX_HOME/sessions/YYYY/MM/DD/
 * rollout-<time>-<thread id>.jsonl`, written as it works (measured with the version in
 * docs/agent-clis.md). This follows that file from the `thread.started` line's thread id
 * and reports each new total. The final `turn.completed` figures are still what the
 * attempt records when it ends normally; this matters when it is stopped mid-run.
 *
 * Modes: idle → following (polling every `intervalMs`: find the file, then read what was
 * appended) → stopped.
 */
export class CodexRollout {
  private threadId: string | null = null;
  private file: string | null = null;
  private offset = 0;
  private partial = "";
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly sessionsDir: string,
    private readonly model: string | null,
    private readonly onTotal: (usage: NormalUsage) => void,
    private readonly intervalMs = ROLLOUT_POLL_MS_DEFAULT,
  ) {}

  /** Takes one stdout line of `codex exec --json`; starts following at its `thread.started`. */
  push(line: string): void {
    if (this.threadId !== null || this.stopped || !line.includes('"thread.started"')) return;
    let doc: Json;
    try {
      doc = JSON.parse(line) as Json;
    } catch {
      return;
    }
    if (doc === null || typeof doc !== "object" || Array.isArray(doc) || doc.type !== "thread.started" || typeof doc.thread_id !== "string") return;
    this.threadId = doc.thread_id;
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
    void this.poll();
  }

  /** Stops following (the CLI ended); waits for a read in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.polling;
  }

  private poll(): Promise<void> {
    if (this.polling !== null || this.stopped) return this.polling ?? Promise.resolve();
    this.polling = this.readNew()
      .catch(() => undefined) // A file that vanished or cannot be read yet: the next poll tries again; the final figures come from stdout.
      .finally(() => {
        this.polling = null;
      });
    return this.polling;
  }

  private async readNew(): Promise<void> {
    this.file ??= await this.find();
    if (this.file === null) return;
    const handle = await open(this.file, "r");
    try {
      const { size } = await handle.stat();
      if (size <= this.offset) return;
      const buffer = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
      this.offset += bytesRead;
      this.partial += buffer.subarray(0, bytesRead).toString("utf8");
    } finally {
      await handle.close();
    }
    const lines = this.partial.split("\n");
    this.partial = lines.pop() ?? "";
    let latest: NormalUsage | null = null;
    for (const line of lines) latest = totalOf(line, this.model) ?? latest;
    if (latest !== null && !this.stopped) this.onTotal(latest);
  }

  /** The session's file: in the day folders of today and yesterday (local time, as Codex names them). */
  private async find(): Promise<string | null> {
    const suffix = `${this.threadId}.jsonl`;
    for (const back of [0, 1]) {
      const day = new Date(Date.now() - back * 86_400_000);
      const dir = join(this.sessionsDir, String(day.getFullYear()), pad(day.getMonth() + 1), pad(day.getDate()));
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      const name = names.find((n) => n.startsWith("rollout-") && n.endsWith(suffix));
      if (name !== undefined) return join(dir, name);
    }
    return null;
  }
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** A `token_count` event's running total, in the shape of ./usage.ts (Codex's input includes the cached tokens; its output the reasoning). */
export function totalOf(line: string, model: string | null): NormalUsage | null {
  if (!line.includes('"token_count"')) return null;
  let doc: Json;
  try {
    doc = JSON.parse(line) as Json;
  } catch {
    return null;
  }
  const payload = field(doc, "payload");
  if (field(payload, "type") !== "token_count") return null;
  const total = field(field(payload, "info"), "total_token_usage");
  if (total === null || typeof total !== "object" || Array.isArray(total)) return null;
  const n = (key: string): number => {
    const v = total[key];
    return typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0;
  };
  const cached = n("cached_input_tokens");
  const written = n("cache_write_input_tokens");
  return {
    model,
    inputTokens: Math.max(0, n("input_tokens") - cached - written),
    outputTokens: n("output_tokens"),
    cacheReadTokens: cached,
    cacheWriteTokens: written,
    reasoningTokens: n("reasoning_output_tokens"),
    costUsd: null,
    turns: null,
  };
}

function field(value: Json | undefined | null, key: string): Json | null {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value) ? (value[key] ?? null) : null;
}
