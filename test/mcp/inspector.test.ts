import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { ROSTER_BIN, requireBuild } from "./helpers.js";

const run = promisify(execFile);
const INSPECTOR = resolve(import.meta.dirname, "../../node_modules/.bin/mcp-inspector");
const PERSONAS = resolve(import.meta.dirname, "../fixtures/mcp-personas");

/**
 * The MCP Inspector's CLI mode (a devDependency, run by `npm test` in CI) against
 * the built `roster mcp`: a third-party client agrees that the server speaks MCP.
 */
describe("roster mcp under the MCP Inspector CLI", () => {
  let temp: TempDir;

  beforeEach(() => {
    requireBuild();
    temp = makeTempDir("roster-mcp-inspector-");
  });

  afterEach(() => temp.cleanup());

  async function inspect(...method: string[]): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const args = ["--cli", process.execPath, ROSTER_BIN, "mcp", "--db", temp.path("roster.db"), "--personas", PERSONAS, ...method];
    const { stdout } = await run(INSPECTOR, args, { cwd: temp.dir, timeout: 30_000, maxBuffer: 4 * 1024 * 1024 });
    return JSON.parse(stdout) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  it("lists every tool with a description and an object input schema (tools/list)", async () => {
    const out = await inspect("--method", "tools/list");
    const names = (out.tools as Array<{ name: string }>).map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(["create_tasks", "get_progress", "register_agent", "claim_task", "heartbeat", "complete_task", "fail_task", "list_personas"]),
    );
    for (const tool of out.tools as Array<{ description?: string; inputSchema: { type: string } }>) {
      expect(tool.description).toBeTruthy();
      expect(tool.inputSchema.type).toBe("object");
    }
  });

  it("calls list_personas and gets the synced persona back (tools/call)", async () => {
    const out = await inspect("--method", "tools/call", "--tool-name", "list_personas");
    expect(out.isError).toBeFalsy();
    expect(out.structuredContent.personas).toEqual([expect.objectContaining({ id: "scout", leaseMs: 9000, heartbeatEveryMs: 3000, uri: "roster://personas/scout" })]);
    expect(JSON.parse(out.content[0].text)).toEqual(out.structuredContent);
  });
});
