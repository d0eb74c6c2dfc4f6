import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { describe, expect, it } from "vitest";
import { usePostgres } from "../helpers/postgres.js";
import { makeTempDir } from "../helpers/tmp.js";
import { ROSTER_BIN, call, callFailing, requireBuild, writePersona } from "../mcp/helpers.js";

/**
 * `roster mcp --db postgres://…` (issue 19): two MCP agents, each its own roster mcp
 * process (as on two hosts), work through one PostgreSQL database: create, claim
 * with a wait, complete, and a second complete of the same lease is fenced.
 */
const server = await usePostgres();

async function spawn(db: string, cwd: string, personas: string): Promise<Client> {
  requireBuild();
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [ROSTER_BIN, "mcp", "--db", db, "--profile", "all", "--log-level", "warn", "--personas", personas],
    stderr: "pipe",
    cwd,
    env: { ...getDefaultEnvironment(), ROSTER_LOG_LEVEL: "warn" },
  });
  const client = new Client({ name: "roster-pg-test", version: "0.0.0" });
  await client.connect(transport);
  return client;
}

describe.skipIf(!server.available)("roster mcp on PostgreSQL", () => {
  it("a planner and a worker in two roster mcp processes create, claim and complete a task through one database", async () => {
    const temp = makeTempDir("roster-pg-mcp-");
    const db = await server.server().newDatabase("roster_mcp");
    writePersona(temp.path("personas"), { id: "quick" });
    const a = await spawn(db, temp.dir, temp.path("personas"));
    const b = await spawn(db, temp.dir, temp.path("personas"));
    try {
      const { agentId } = await call(b, "register_agent", { name: "worker-b", persona: "quick" });
      const waiting = call(b, "claim_task", { agentId, persona: "quick", waitMs: 10_000 });
      const { ids } = await call(a, "create_tasks", { tasks: [{ persona: "quick", title: "from host a" }] });
      const claim = await waiting;
      expect(claim.task.id).toBe(ids[0]);
      await call(b, "complete_task", { taskId: claim.task.id, leaseToken: claim.leaseToken, result: { by: "b" } });
      const progress = await call(a, "get_progress", { rootId: ids[0] });
      expect(progress.done).toBe(true);
      const other = await callFailing(a, "complete_task", { taskId: claim.task.id, leaseToken: "not-the-lease", result: { by: "a" } });
      expect(other.text).toMatch(/LEASE_LOST/);
    } finally {
      await a.close();
      await b.close();
      temp.cleanup();
    }
  });
});
