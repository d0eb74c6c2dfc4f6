import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { ROSTER_BIN } from "../mcp/helpers.js";
import type { HostNetwork } from "./netns.js";
import { cleanEnv } from "./roster-process.js";

/**
 * Real roster processes on the "hosts" of a HostNetwork (issue 19): `roster
 * start` run inside a host's network namespace, and `roster mcp` inside another,
 * driven over stdio by the MCP SDK's Client doing claim/complete loops.
 */

export interface HostSupervisor {
  label: string;
  child: ChildProcess;
  /** Its agent id, from its "supervisor started" log line; rejects if it exits first. */
  agentId: Promise<string>;
  /** Its stderr (pino JSON lines) so far. */
  log(): string;
  exited(): boolean;
}

/** `roster start` inside `host`'s namespace on `url`; its stderr is appended to `logFile` too. */
export function startHostSupervisor(p: { net: HostNetwork; host: string; url: string; personasDir: string; logFile: string; env?: Record<string, string>; args?: string[] }): HostSupervisor {
  const [file, args] = p.net.command(p.host, process.execPath, [
    ROSTER_BIN,
    ...["start", "--db", p.url, "--personas", p.personasDir, "--no-metrics", "--threads", "1", "--log-level", "info"],
    ...(p.args ?? []),
  ]);
  const child = spawn(file, args, { env: cleanEnv(p.env), stdio: ["ignore", "ignore", "pipe"] });
  const label = `supervisor on ${p.host}`;
  let log = "";
  let exited = false;
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    log += chunk;
    appendFileSync(p.logFile, chunk.split("\n").filter((l) => l !== "").map((l) => `${label}: ${l}\n`).join(""));
  });
  const agentId = new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", () => {
      const m = /"agentId":"([^"]+)"[^\n]*"msg":"supervisor started"/.exec(log);
      if (m !== null) resolve(m[1]!);
    });
    child.on("exit", (code, signal) => {
      exited = true;
      reject(new Error(`${label} exited (code ${code}, signal ${signal}) before it started: ${log.slice(-2_000)}`));
    });
  });
  agentId.catch(() => undefined);
  return { label, child, agentId, log: () => log, exited: () => exited };
}

export interface McpWorker {
  label: string;
  agentId: string;
  client: Client;
  /**
   * Tasks it completed; complete_task answers LEASE_LOST (a late write refused); claims that
   * came back empty; calls answered DATABASE_IO and made again; time in each tool, ms.
   */
  stats: { completed: number; leaseLost: number; emptyClaims: number; databaseRetries: number; claimMs: number; completeMs: number };
  /** Ends the claim/complete loop and the session (stdin closed: roster mcp deregisters and exits). */
  stop(): Promise<void>;
  stderr(): string;
}

type Data = Record<string, unknown>;

function structured(name: string, result: CallToolResult): { ok: true; data: Data } | { ok: false; code: string; text: string } {
  const text = (result.content[0] as { text?: string } | undefined)?.text ?? "";
  if (result.isError === true) {
    const error = (result.structuredContent as { error?: { code?: string } } | undefined)?.error;
    return { ok: false, code: error?.code ?? "UNKNOWN", text: `${name}: ${text}` };
  }
  return { ok: true, data: (result.structuredContent ?? {}) as Data };
}

/**
 * `roster mcp --profile worker` inside `host`'s namespace, a Client over its stdio,
 * registered as an agent, and a loop: claim_task(persona, waitMs 500), then
 * complete_task with the lease token; LEASE_LOST drops the task (docs/mcp.md, the
 * worker loop); DATABASE_IO makes the same call again after a pause. Any other error
 * ends the loop and is thrown by stop().
 */
export async function startMcpWorker(p: { net: HostNetwork; host: string; url: string; persona: string; reapIntervalMs: number }): Promise<McpWorker> {
  const [file, args] = p.net.command(p.host, process.execPath, [
    ROSTER_BIN,
    ...["mcp", "--db", p.url, "--profile", "worker", "--log-level", "warn", "--reap-interval-ms", String(p.reapIntervalMs)],
  ]);
  const transport = new StdioClientTransport({ command: file, args, stderr: "pipe", env: { ...getDefaultEnvironment(), ROSTER_LOG_LEVEL: "warn" } });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const label = `MCP worker on ${p.host}`;
  const client = new Client({ name: label, version: "0.0.0" });
  try {
    await client.connect(transport);
  } catch (error) {
    throw new Error(`${label}: roster mcp did not start (${(error as Error).message}): ${stderr}`, { cause: error });
  }
  const registered = structured("register_agent", (await client.callTool({ name: "register_agent", arguments: { name: label } })) as CallToolResult);
  if (!registered.ok) throw new Error(registered.text);
  const agentId = String(registered.data.agentId);
  const stats = { completed: 0, leaseLost: 0, emptyClaims: 0, databaseRetries: 0, claimMs: 0, completeMs: 0 };
  let stopping = false;
  // A call the server could not finish (DATABASE_IO: the database did not answer in time) is made
  // again after a pause, the same call with the same lease token (docs/mcp.md: complete_task again
  // with the same token answers alreadyCompleted when the first one did land).
  const callTool = async (name: string, args: Record<string, unknown>) => {
    for (let attempt = 0; ; attempt++) {
      const result = structured(name, (await client.callTool({ name, arguments: args })) as CallToolResult);
      if (result.ok || result.code !== "DATABASE_IO" || attempt >= 20 || stopping) return result;
      stats.databaseRetries++;
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
    }
  };
  const loop = (async () => {
    while (!stopping) {
      const claimStart = performance.now();
      const claim = await callTool("claim_task", { persona: p.persona, waitMs: 500 });
      stats.claimMs += performance.now() - claimStart;
      if (!claim.ok) throw new Error(claim.text);
      const task = claim.data.task as { id: number; attempt: number } | null;
      if (task === null || task === undefined) {
        stats.emptyClaims++;
        continue;
      }
      const completeStart = performance.now();
      const done = await callTool("complete_task", { taskId: task.id, leaseToken: claim.data.leaseToken, result: { by: agentId, attempt: task.attempt } });
      stats.completeMs += performance.now() - completeStart;
      if (done.ok) stats.completed++;
      else if (done.code === "LEASE_LOST") stats.leaseLost++;
      else throw new Error(done.text);
    }
  })();
  loop.catch(() => undefined);
  return {
    label,
    agentId,
    client,
    stats,
    stderr: () => stderr,
    stop: async () => {
      stopping = true;
      try {
        await loop;
      } finally {
        await client.close();
      }
    },
  };
}
