import { describe, expect, it } from "vitest";
import { classifyFailure, localTime, nextPacificMidnight, permissionDenial, retryAfterMs, trailingJson } from "../../src/adapters/agent/failures.js";

/** Output shapes as Claude Code 2.1.197, Codex 0.171.0 and Gemini CLI 0.61.0 printed them against the scripted server. */
const claude = (fields: Record<string, unknown>) => JSON.stringify({ type: "result", subtype: "success", is_error: true, num_turns: 1, session_id: "s", ...fields });
const codex = (message: string) =>
  [{ type: "thread.started", thread_id: "t" }, { type: "turn.started" }, { type: "error", message }, { type: "turn.failed", error: { message } }].map((l) => JSON.stringify(l)).join("\n");
const geminiErr = (message: string, code: number) => `Error when talking to Gemini API\n    at x (file.js:1:1)\n{\n  "session_id": "g",\n  "error": {\n    "type": "Error",\n    "message": ${JSON.stringify(message)},\n    "code": ${code}\n  }\n}`;
const NOW = Date.UTC(2026, 11, 6, 19, 0, 0);
const base = { stdout: "", stderr: "", error: null, keyVar: "ANTHROPIC_API_KEY", now: NOW };

describe("agent CLI failure classes", () => {
  it("reads claude's 401 as an authentication failure naming the key's variable, not retryable", () => {
    const f = classifyFailure({ ...base, dialect: "claude", stdout: claude({ api_error_status: 401, result: "Invalid API key · Fix external API key" }), error: "Invalid API key · Fix external API key" });
    expect(f).toMatchObject({ kind: "auth", retryable: false });
    expect(f?.message).toMatch(/Invalid API key.*ANTHROPIC_API_KEY/);
  });

  it("reads claude's 429 as a rate limit and its 500 and refused connection as retryable", () => {
    expect(classifyFailure({ ...base, dialect: "claude", stdout: claude({ api_error_status: 429 }), error: "API Error: Request rejected (429)" })).toMatchObject({ kind: "rate-limit", retryable: true });
    expect(classifyFailure({ ...base, dialect: "claude", stdout: claude({ api_error_status: 500 }), error: "API Error: 500 Internal server error." })).toMatchObject({ kind: "server", retryable: true });
    expect(classifyFailure({ ...base, dialect: "claude", stdout: claude({ api_error_status: null }), error: "API Error: Unable to connect to API (ConnectionRefused)" })).toMatchObject({ kind: "unreachable", retryable: true });
  });

  it("reads a subscription's usage limit with its reset time", () => {
    const f = classifyFailure({ ...base, dialect: "claude", error: "Claude AI usage limit reached|1796000000" });
    expect(f).toMatchObject({ kind: "usage-limit", retryable: true, resetAt: 1_796_000_000_000 });
  });

  it("reads codex's usage limit and its local reset time", () => {
    const message = "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at Dec 7th, 2026 9:33 AM.";
    const f = classifyFailure({ ...base, dialect: "codex", stdout: codex(message), error: message, keyVar: "OPENAI_API_KEY" });
    expect(f).toMatchObject({ kind: "usage-limit", retryable: true, resetAt: new Date(2026, 11, 7, 9, 33).getTime() });
    expect(f?.message).toBe(message);
  });

  it("reads codex's 401, 429 and reconnect loop", () => {
    const key = { ...base, dialect: "codex" as const, keyVar: "ROSTER_OPENAI_KEY" };
    const auth = "unexpected status 401 Unauthorized: Incorrect API key provided: sk-test., url: http://127.0.0.1:1/v1/responses";
    expect(classifyFailure({ ...key, stdout: codex(auth), error: auth })).toMatchObject({ kind: "auth", retryable: false });
    expect(classifyFailure({ ...key, stdout: codex(auth), error: auth })?.message).toMatch(/ROSTER_OPENAI_KEY/);
    const limited = "exceeded retry limit, last status: 429 Too Many Requests";
    expect(classifyFailure({ ...key, stdout: codex(limited), error: limited })).toMatchObject({ kind: "rate-limit", retryable: true });
    const net = "Reconnecting... waiting for network (Connection failed: error sending request)";
    expect(classifyFailure({ ...key, stdout: codex(net), error: net })).toMatchObject({ kind: "unreachable", retryable: true });
  });

  it("reads gemini's error JSON from stderr: the key, a rate limit with its retry delay, the daily quota", () => {
    const g = { ...base, dialect: "gemini" as const, keyVar: "GEMINI_API_KEY" };
    expect(classifyFailure({ ...g, stderr: geminiErr('{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}', 400) })).toMatchObject({ kind: "auth", retryable: false });
    expect(classifyFailure({ ...g, stderr: geminiErr("Resource has been exhausted (e.g. check quota).\nSuggested retry after 7s.", 429) })).toMatchObject({ kind: "rate-limit", retryAfterMs: 7_000 });
    const daily = classifyFailure({ ...g, stderr: geminiErr("You have exhausted your daily quota on this model.", 429) });
    expect(daily).toMatchObject({ kind: "usage-limit", retryable: true, resetAt: nextPacificMidnight(NOW) });
    expect(classifyFailure({ ...g, stderr: geminiErr('{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}', 500) })).toMatchObject({ kind: "server" });
    expect(classifyFailure({ ...g, stderr: geminiErr("exception TypeError: fetch failed sending request", 1) })).toMatchObject({ kind: "unreachable" });
  });

  it("names the tool each CLI's permissions refused", () => {
    const denials = [{ tool_name: "Write", tool_use_id: "t1", tool_input: { file_path: "/w/a.txt" } }];
    expect(permissionDenial({ dialect: "claude", stdout: JSON.stringify({ type: "result", is_error: false, result: "ok", permission_denials: denials }), stderr: "" })).toMatchObject({ kind: "permission-denied", retryable: false, tool: "Write" });
    const codexLog = "2026-12-06T19:46:58.841062Z ERROR codex_core::tools::router: error=patch rejected: writing is blocked by read-only sandbox; rejected by user approval settings";
    expect(permissionDenial({ dialect: "codex", stdout: "", stderr: codexLog })).toMatchObject({ tool: "apply_patch" });
    const geminiLog = 'Error executing tool write_file: Tool "write_file" not found. Did you mean one of: "read_file", "grep_search"?';
    expect(permissionDenial({ dialect: "gemini", stdout: "", stderr: geminiLog })).toMatchObject({ tool: "write_file" });
    expect(permissionDenial({ dialect: "claude", stdout: JSON.stringify({ type: "result", permission_denials: [] }), stderr: "" })).toBeNull();
  });

  it("reads retry delays, local reset times, Pacific midnight and a trailing JSON document", () => {
    expect(retryAfterMs("Suggested retry after 7s.")).toBe(7_000);
    expect(retryAfterMs("Please try again in 250ms")).toBe(250);
    expect(retryAfterMs("try again in 2 minutes")).toBe(120_000);
    expect(retryAfterMs("no hint")).toBeNull();
    expect(localTime("7:48 PM", new Date(2026, 0, 1, 10, 0).getTime())).toBe(new Date(2026, 0, 1, 19, 48).getTime());
    expect(localTime("7:48 AM", new Date(2026, 0, 1, 10, 0).getTime())).toBe(new Date(2026, 0, 2, 7, 48).getTime());
    // Codex shows the reset to the minute: a reset within this minute is now, not tomorrow.
    expect(localTime("10:00 AM", new Date(2026, 0, 1, 10, 0, 40).getTime())).toBe(new Date(2026, 0, 1, 10, 0).getTime());
    const midnight = nextPacificMidnight(NOW);
    expect(midnight).toBeGreaterThan(NOW);
    expect(midnight - NOW).toBeLessThanOrEqual(86_400_000);
    expect(new Intl.DateTimeFormat("en-US", { timeZone: "America/Los_Angeles", hourCycle: "h23", hour: "2-digit", minute: "2-digit" }).format(new Date(midnight))).toBe("00:00");
    expect(trailingJson('log {x}\n{\n "a": {"b": 1}\n}\n')).toEqual({ a: { b: 1 } });
    expect(trailingJson("no json")).toBeNull();
  });
});
