import { execFile } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, join, relative } from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { BIN, rosterOk } from "./helpers.js";

// The README's MCP snippet, run as a user would: roster installed from this
// checkout with npm into a prefix of its own (a link, so it works offline), the
// client started in an empty folder outside the checkout. The snippet is read
// from README.md itself, so the README cannot drift from what works.

const ROOT = join(import.meta.dirname, "..", "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

interface ServerEntry {
  command: string;
  args: string[];
}

/** The `mcpServers` JSON block of "Adding roster to an agent CLI". */
function readmeMcpServer(): ServerEntry {
  const section = README.slice(README.indexOf("### Adding roster to an agent CLI"));
  const block = /```json\n([\s\S]*?)```/.exec(section);
  if (block === null) throw new Error("README: no JSON block under 'Adding roster to an agent CLI'");
  const parsed = JSON.parse(block[1]!) as { mcpServers: Record<string, ServerEntry> };
  return parsed.mcpServers.roster!;
}

describe("the README's MCP snippet", () => {
  let temp: TempDir;
  let prefix: string;

  beforeAll(async () => {
    temp = makeTempDir("roster-readme-mcp-");
    prefix = temp.path("prefix");
    // `npm i -g --prefix P <folder>` links the checkout: no registry needed.
    await promisify(execFile)("npm", ["install", "--global", "--prefix", prefix, "--offline", "--no-audit", "--no-fund", ROOT], {
      env: { ...process.env, npm_config_update_notifier: "false" },
    });
  }, 120_000);
  afterAll(() => temp.cleanup());

  it("never tells anyone to run `npx roster`, which is an unrelated package on npm", () => {
    const code = [...README.matchAll(/```\w*\n([\s\S]*?)```/g)].map((m) => m[1]!).join("\n");
    expect(code).not.toMatch(/npx (-y )?roster(?!-agents)\b/);
    expect(code).not.toMatch(/"npx"/);
    for (const line of README.split("\n").filter((l) => /^claude mcp add roster -- /.test(l))) {
      expect(line.replace(/^claude mcp add roster -- /, "").split(" ")[0]).toBe(readmeMcpServer().command);
    }
  });

  it("connects from an empty folder outside the checkout, lists tools, and leaves the user's personas as they were", async () => {
    const server = readmeMcpServer();
    // The user's own database, with their own personas synced from their folder.
    const db = temp.path("home", "team.db");
    mkdirSync(temp.path("home", "my-personas"), { recursive: true });
    writeFileSync(
      temp.path("home", "my-personas", "planner.md"),
      "---\nid: planner\nname: My own planner\nadapter:\n  kind: echo\nconcurrency: 2\n---\nThe user's planner, not the demo one.\n",
    );
    await rosterOk(["init", "--db", db, "--personas", temp.path("home", "my-personas")]);
    const before = await personasOf(db);
    expect(before.map((p) => p.name)).toEqual(["My own planner"]);

    // Where the client starts the server: outside the checkout, with a ./personas
    // folder (the demo personas) lying there that nobody pointed roster at.
    const cwd = temp.path("elsewhere");
    cpSync(join(ROOT, "personas"), join(cwd, "personas"), { recursive: true });
    expect(relative(ROOT, cwd).startsWith("..")).toBe(true);

    const args = server.args.map((arg) => (arg === "/path/to/roster.db" ? db : arg));
    expect(args).toContain(db);
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("ROSTER_")) env[key] = value;
    env.PATH = `${join(prefix, "bin")}${delimiter}${env.PATH ?? ""}`;
    const client = new Client({ name: "readme-test", version: "0" });
    const transport = new StdioClientTransport({ command: server.command, args, cwd, env, stderr: "pipe" });
    await client.connect(transport);
    try {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(["register_agent", "claim_task", "complete_task", "list_personas"]));
      const listed = await client.callTool({ name: "list_personas", arguments: {} });
      expect(JSON.stringify(listed.structuredContent)).toContain("My own planner");
    } finally {
      await client.close();
    }
    expect(await personasOf(db)).toEqual(before);
  }, 60_000);

  it("syncs a persona folder named by ROSTER_PERSONAS (an explicit choice, like --personas)", async () => {
    const db = temp.path("env", "env.db");
    mkdirSync(temp.path("env", "team-personas"), { recursive: true });
    writeFileSync(temp.path("env", "team-personas", "scribe.md"), "---\nid: scribe\nname: Scribe\nadapter:\n  kind: echo\n---\nWrites things down.\n");
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("ROSTER_")) env[key] = value;
    env.ROSTER_PERSONAS = temp.path("env", "team-personas");
    const client = new Client({ name: "readme-test", version: "0" });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp", "--db", db, "--log-level", "silent"], cwd: temp.dir, env, stderr: "pipe" }));
    try {
      const listed = await client.callTool({ name: "list_personas", arguments: {} });
      expect(JSON.stringify(listed.structuredContent)).toContain('"id":"scribe"');
    } finally {
      await client.close();
    }
    expect((await personasOf(db)).map((p) => p.id)).toEqual(["scribe"]);
  }, 60_000);

  it("runs the build this checkout made (the installed command is the checkout's bin)", async () => {
    const installed = await promisify(execFile)(join(prefix, "bin", "roster"), ["--version"]);
    const viaBin = await rosterOk(["--version"]);
    expect(installed.stdout).toBe(viaBin);
    expect(BIN.endsWith(join("dist", "src", "cli", "bin.js"))).toBe(true);
  });
});

async function personasOf(db: string): Promise<Array<{ id: string; name: string; config: unknown; updatedAt: number; sourcePath: string | null }>> {
  const store = await openStore({ path: db });
  try {
    return (await store.personas.list()).map((p) => ({ id: p.id, name: p.name, config: p.config, updatedAt: p.updatedAt, sourcePath: p.sourcePath }));
  } finally {
    await store.close();
  }
}
