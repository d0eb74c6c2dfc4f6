import { spawn } from "node:child_process";
import { existsSync, writeFileSync, mkdirSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { openStore } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { ROSTER_BIN, requireBuild, writePersona } from "./helpers.js";
import { syncPersonaFolder } from "../helpers/personas.js";

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `roster mcp` with `input` on stdin (then closes it) and waits for it to exit. */
function runMcp(args: string[], input: string, cwd: string): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ROSTER_BIN, "mcp", ...args], { cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

const rpc = (id: number, method: string, params: Record<string, unknown> = {}): string => `${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`;

describe("the roster mcp command", () => {
  let temp: TempDir;

  beforeEach(() => {
    requireBuild();
    temp = makeTempDir("roster-mcp-cli-");
  });

  afterEach(() => temp.cleanup());

  it("writes only JSON-RPC on stdout, logs on stderr, and exits 0 when the client closes stdin", async () => {
    writePersona(temp.path("personas"), { id: "scribe" });
    const input =
      rpc(1, "initialize", { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "raw", version: "0" } }) +
      `${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n` +
      rpc(2, "tools/call", { name: "list_personas", arguments: {} });
    // stdin ends right after the requests; give the answers time to be written first.
    const exit = await runMcp(["--db", temp.path("roster.db"), "--personas", temp.path("personas"), "--log-level", "debug"], input, temp.dir);
    expect(exit.code).toBe(0);
    const lines = exit.stdout.split("\n").filter((line) => line !== "");
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: "2.0" });
    const answer = lines.map((line) => JSON.parse(line) as { id?: number; result?: { structuredContent?: unknown } }).find((m) => m.id === 2);
    expect(answer?.result?.structuredContent).toMatchObject({ personas: [{ id: "scribe" }] });
    expect(exit.stderr).toContain("roster mcp serving on stdio");
  });

  it("answers a claim that is still waiting when stdin closes, then exits 0, releasing the session's lease uncounted", async () => {
    writePersona(temp.path("personas"), { id: "scribe" });
    writePersona(temp.path("personas"), { id: "idle" });
    const store = await openStore({ path: temp.path("roster.db") });
    await syncPersonaFolder(store, temp.path("personas"));
    const [taskId] = (await store.tasks.enqueue({ tasks: [{ persona: "scribe", title: "held when stdin closes" }], now: Date.now() })).ids;
    await store.close();
    // The session's agent is minted by the server (agent ids are bound to their session): the
    // first claim takes the task, the second waits on a persona with nothing ready when stdin ends.
    const input =
      rpc(1, "initialize", { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "raw", version: "0" } }) +
      `${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n` +
      rpc(2, "tools/call", { name: "claim_task", arguments: { persona: "scribe" } }) +
      rpc(3, "tools/call", { name: "claim_task", arguments: { persona: "idle", waitMs: 1_000 } });
    const exit = await runMcp(["--db", temp.path("roster.db")], input, temp.dir);
    expect(exit.code).toBe(0);
    const answers = exit.stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as { id?: number; result?: { structuredContent?: { task?: { id: number } | null } } });
    expect(answers.find((m) => m.id === 2)?.result?.structuredContent?.task?.id).toBe(taskId);
    expect(answers.find((m) => m.id === 3)?.result?.structuredContent).toEqual({ task: null });
    const after = await openStore({ path: temp.path("roster.db") });
    try {
      const task = await after.tasks.get({ taskId: taskId! });
      expect(task.status).toBe("pending");
      expect(task.attempts).toBe(0);
      expect((await after.agents.list({ includeInactive: true })).map((a) => a.status)).toEqual(["deregistered"]);
    } finally {
      await after.close();
    }
  });

  it("exits 2 and names the flag for an unknown --profile, creating no database", async () => {
    const exit = await runMcp(["--db", temp.path("roster.db"), "--profile", "boss"], "", temp.dir);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toContain("--profile");
    expect(exit.stdout).toBe("");
    expect(existsSync(temp.path("roster.db"))).toBe(false);
  });

  it("exits 2 naming the persona file and field when a persona is invalid, creating no database", async () => {
    mkdirSync(temp.path("personas"));
    writeFileSync(temp.path("personas", "bad.md"), "---\nid: bad\nname: Bad\nadapter:\n  kind: echo\nleaseMs: 5\n---\nBody.\n");
    const exit = await runMcp(["--db", temp.path("roster.db"), "--personas", temp.path("personas")], "", temp.dir);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toContain("bad.md");
    expect(exit.stderr).toContain("leaseMs");
    expect(existsSync(temp.path("roster.db"))).toBe(false);
  });
});
