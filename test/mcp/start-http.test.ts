import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { ROSTER_BIN, call, requireBuild, until, writePersona } from "./helpers.js";

const TOKEN = "start-test-token";

/**
 * `roster start --mcp-port 0` (the built CLI): the supervisor's process also serves
 * MCP over Streamable HTTP on 127.0.0.1, behind ROSTER_MCP_TOKEN. The URL is read
 * from the start log line that carries it (port 0 picks a free port).
 */
describe("roster start --mcp-port", () => {
  let temp: TempDir;
  let child: ChildProcess | null = null;

  beforeEach(() => {
    requireBuild();
    temp = makeTempDir("roster-mcp-start-");
    writePersona(temp.path("personas"), { id: "checker", adapter: "echo" });
  });

  /** Spawns `roster start` (args) and waits for the log line with its MCP URL; the URL and what it logged by then. */
  async function startLoggingUrl(args: string[], env: NodeJS.ProcessEnv): Promise<{ url: string; stderr: string }> {
    const started = spawn(process.execPath, args, { cwd: temp.dir, env, stdio: ["ignore", "pipe", "pipe"] });
    child = started;
    let stderr = "";
    started.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    let url: string | null = null;
    await until(async () => {
      for (const line of stderr.split("\n")) {
        const match = /"url":"(http:\/\/127\.0\.0\.1:\d+\/mcp)"/.exec(line);
        if (match) url = match[1]!;
      }
      if (started.exitCode !== null) throw new Error(`roster start exited ${started.exitCode}:\n${stderr}`);
      return url !== null;
    }, "roster start to log its MCP URL");
    return { url: url!, stderr };
  }

  afterEach(async () => {
    if (child !== null && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    child = null;
    temp.cleanup();
  });

  it("serves MCP over HTTP beside the supervisor: with the token a planner's task is run; without it, 401", async () => {
    const args = [ROSTER_BIN, "start", "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "--mcp-port", "0", "--no-metrics", "--log-level", "info"];
    const { url, stderr } = await startLoggingUrl(args, { ...process.env, ROSTER_MCP_TOKEN: TOKEN });
    expect(stderr).not.toContain(TOKEN);

    const anonymous = new Client({ name: "anon", version: "0" });
    await expect(anonymous.connect(new StreamableHTTPClientTransport(new URL(url!)))).rejects.toMatchObject({ code: 401 });

    const client = new Client({ name: "planner", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(url!), { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } }));
    const { ids } = await call(client, "create_tasks", { tasks: [{ persona: "checker", title: "checked by the supervisor", payload: { n: 1 } }] });
    await until(async () => (await call(client, "get_progress", {})).done === true, "the supervisor to run the task");
    const task = (await call(client, "get_task", { taskId: ids[0] })).task;
    expect(task.status).toBe("completed");
    expect(task.result).toEqual({ echo: { n: 1 } });
    await client.close();
  });
  it("--mcp-profile planner serves the planner tools only: a worker token opens nothing there, and no token is logged", async () => {
    const WORKER = "worker-only-token";
    const args = [ROSTER_BIN, "start", "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "--mcp-port", "0", "--mcp-profile", "planner", "--no-metrics", "--log-level", "info"];
    const { url, stderr } = await startLoggingUrl(args, { ...process.env, ROSTER_MCP_TOKEN: TOKEN, ROSTER_MCP_WORKER_TOKEN: WORKER });
    expect(stderr).not.toContain(TOKEN);
    expect(stderr).not.toContain(WORKER);
    expect(stderr).toContain('"profile":"planner"');

    const bearer = (token: string) => ({ requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const planner = new Client({ name: "planner", version: "0" });
    await planner.connect(new StreamableHTTPClientTransport(new URL(url!), bearer(TOKEN)));
    const names = (await planner.listTools()).tools.map((t) => t.name);
    expect(names).toContain("create_goal");
    expect(names).not.toContain("claim_task");
    await planner.close();

    // The server serves the planner profile only: /mcp/worker is refused even to the worker token.
    const worker = new Client({ name: "worker", version: "0" });
    await expect(worker.connect(new StreamableHTTPClientTransport(new URL(`${url!}/worker`), bearer(WORKER)))).rejects.toMatchObject({ code: 403 });
    // And the worker token does not open the planner tools.
    const sneaky = new Client({ name: "sneaky", version: "0" });
    await expect(sneaky.connect(new StreamableHTTPClientTransport(new URL(url!), bearer(WORKER)))).rejects.toMatchObject({ code: 403 });
  });

  it("--mcp-worker-token opens /mcp/worker and nothing else", async () => {
    const WORKER = "worker-only-token";
    const args = [ROSTER_BIN, "start", "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "--mcp-port", "0", "--mcp-worker-token", WORKER, "--no-metrics", "--log-level", "info"];
    const { url, stderr } = await startLoggingUrl(args, { ...process.env, ROSTER_MCP_TOKEN: TOKEN });
    expect(stderr).not.toContain(WORKER);
    const bearer = (token: string) => ({ requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const worker = new Client({ name: "worker", version: "0" });
    await worker.connect(new StreamableHTTPClientTransport(new URL(`${url!}/worker`), bearer(WORKER)));
    const names = (await worker.listTools()).tools.map((t) => t.name);
    expect(names).toContain("claim_task");
    expect(names).not.toContain("create_tasks");
    await worker.close();
    const planner = new Client({ name: "sneaky", version: "0" });
    await expect(planner.connect(new StreamableHTTPClientTransport(new URL(`${url!}/planner`), bearer(WORKER)))).rejects.toMatchObject({ code: 403 });
  });
});
