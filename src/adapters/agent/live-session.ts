import type { Json } from "../../store/types.js";
import { getPath } from "./output.js";
import type { OutputSpec } from "./profiles.js";

/**
 * The session id a CLI prints while it runs, read line by line, so that an attempt killed
 * before its final output (a timeout, a budget) still names the conversation its next attempt
 * resumes (./resume.ts): Claude Code's stream-json opens with `system init` carrying
 * `session_id`, Codex with `thread.started`. A CLI that prints one JSON document at the end
 * (Gemini's `json`) tells nothing until then.
 */
export class LiveSession {
  private id: string | null = null;

  constructor(private readonly spec: OutputSpec) {}

  /** Whether lines can tell the session at all. */
  get reads(): boolean {
    return (this.spec.format === "jsonl" && this.spec.session !== undefined) || (this.spec.format === "json" && this.spec.lines !== undefined && this.spec.session !== undefined);
  }

  get sessionId(): string | null {
    return this.id;
  }

  push(line: string): void {
    if (this.id !== null || !line.startsWith("{")) return;
    let doc: Json;
    try {
      doc = JSON.parse(line) as Json;
    } catch {
      return;
    }
    const spec = this.spec;
    let value: Json | undefined;
    if (spec.format === "jsonl" && spec.session !== undefined) {
      const rule = spec.session;
      if (Object.entries(rule.match).every(([path, want]) => getPath(doc, path) === want)) value = getPath(doc, rule.path);
    } else if (spec.format === "json" && spec.lines !== undefined && spec.session !== undefined) {
      value = getPath(doc, spec.session);
    }
    if (typeof value === "string" && value !== "") this.id = value;
  }
}
