import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Clock } from "../../src/clock.js";
import { createMcpContext, createMcpServer, endMcpSession, type McpContext, type McpProfile } from "../../src/mcp/index.js";
import type { Store, TaskEvent } from "../../src/store/index.js";
import { openTestStore, type TestStore } from "../helpers/store.js";

/** The built CLI the stdio tests spawn; `npm test` builds it first (pretest). */
export const ROSTER_BIN = resolve(import.meta.dirname, "../../dist/src/cli/bin.js");

export function requireBuild(): void {
  if (!existsSync(ROSTER_BIN)) {
    throw new Error(`${ROSTER_BIN} is missing: build first with \`npx tsc -p tsconfig.json\` (npm test does it)`);
  }
}

/** A persona file for a temp personas folder: short leases, no backoff, so loss and retry are quick. */
export function writePersona(
  dir: string,
  p: { id: string; adapter?: string; leaseMs?: number; maxAttempts?: number; body?: string },
): void {
  mkdirSync(dir, { recursive: true });
  const text = [
    "---",
    `id: ${p.id}`,
    `name: ${p.id[0]!.toUpperCase()}${p.id.slice(1)}`,
    "adapter:",
    `  kind: ${p.adapter ?? "echo"}`,
    "concurrency: 4",
    `leaseMs: ${p.leaseMs ?? 30_000}`,
    "timeoutMs: 60000",
    "retry:",
    `  maxAttempts: ${p.maxAttempts ?? 5}`,
    "  backoff: fixed",
    "  baseMs: 0",
    "  maxMs: 0",
    "  jitter: 0",
    "---",
    p.body ?? `You are ${p.id}. Do the task and report what you did.`,
    "",
  ].join("\n");
  writeFileSync(join(dir, `${p.id}.md`), text);
}

export interface SpawnedClient {
  client: Client;
  transport: StdioClientTransport;
  /** What the server wrote on stderr (its logs). */
  stderr(): string;
  close(): Promise<void>;
}

/** Spawns the built `roster mcp` as a child process and connects the SDK's Client over stdio. */
export async function spawnMcpClient(options: {
  db: string;
  profile?: McpProfile;
  personas?: string;
  extraArgs?: string[];
  name?: string;
  /** The server's working folder; default the database file's folder (give one for a postgres:// URL). */
  cwd?: string;
}): Promise<SpawnedClient> {
  requireBuild();
  const args = [ROSTER_BIN, "mcp", "--db", options.db, "--profile", options.profile ?? "all", "--log-level", "warn", "--no-reaper"];
  if (options.personas !== undefined) args.push("--personas", options.personas);
  args.push(...(options.extraArgs ?? []));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args,
    stderr: "pipe",
    // A cwd without ./personas, so only --personas syncs anything.
    cwd: options.cwd ?? resolve(options.db, ".."),
    env: { ...getDefaultEnvironment(), ROSTER_LOG_LEVEL: "warn" },
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const client = new Client({ name: options.name ?? "roster-test", version: "0.0.0" });
  try {
    await client.connect(transport);
  } catch (error) {
    // Say why the server went away: its stderr has the reason.
    await new Promise((r) => setTimeout(r, 100));
    throw new Error(`roster mcp did not start (${(error as Error).message}); its stderr:\n${stderr}`, { cause: error });
  }
  return { client, transport, stderr: () => stderr, close: () => client.close() };
}

/** A Client connected in-process to a server over `store` (fast; for tool behaviour). */
/** A fresh test store (test/helpers/store.ts) and an all-tools client connected to it in process; `close` ends both. */
export async function openMcpInProcess(): Promise<{ db: TestStore; client: Client; close: () => Promise<void> }> {
  const db = await openTestStore();
  const { client, close } = await connectInProcess({ store: db.store, clock: db.clock });
  return {
    db,
    client,
    close: async () => {
      await close();
      await db.close();
    },
  };
}

export async function connectInProcess(options: {
  store: Store;
  clock?: Clock;
  profile?: McpProfile;
  context?: McpContext;
}): Promise<{ client: Client; context: McpContext; close: () => Promise<void> }> {
  const context = options.context ?? createMcpContext({ store: options.store, ...(options.clock ? { clock: options.clock } : {}), pollIntervalMs: 20 });
  const server = await createMcpServer(context, options.profile === undefined ? {} : { profile: options.profile });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "roster-test", version: "0.0.0" });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  return {
    client,
    context,
    close: async () => {
      await client.close();
      await server.close();
      await endMcpSession(server);
      if (options.context === undefined) {
        context.changes.stop();
        context.personaWatch.stop();
      }
    },
  };
}

type Data = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Calls a tool that must succeed; returns its structuredContent (and checks the text matches it). */
export async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Data> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
  const text = (result.content[0] as { text: string }).text;
  // The text is the same JSON, or (for a big answer) a summary that points at structuredContent.
  if (!text.endsWith("in structuredContent)") && JSON.stringify(JSON.parse(text)) !== JSON.stringify(result.structuredContent)) {
    throw new Error(`${name}: text and structuredContent differ`);
  }
  return result.structuredContent as Data;
}

/** Calls a tool that must fail; returns the result (isError true) and its text. */
export async function callFailing(client: Client, name: string, args: Record<string, unknown>): Promise<{ text: string; error: Data | undefined }> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (result.isError !== true) throw new Error(`${name} unexpectedly succeeded: ${JSON.stringify(result.structuredContent)}`);
  const text = (result.content[0] as { text: string }).text;
  return { text, error: (result.structuredContent as { error?: Data } | undefined)?.error };
}

/**
 * DESIGN rule 3 from the audit log: walking each task's events in order, a
 * `task:claimed` never arrives while another agent still holds the task.
 * Returns the violations (empty when the rule held).
 */
export function doubleHolds(taskId: number, events: TaskEvent[]): string[] {
  const ends = new Set(["task:completed", "task:retrying", "task:failed", "task:released", "task:cancelled"]);
  let holder: string | null = null;
  const problems: string[] = [];
  for (const event of events) {
    if (event.type === "task:claimed") {
      if (holder !== null) problems.push(`task ${taskId}: claimed by ${event.agentId} while ${holder} held it (event ${event.id})`);
      holder = event.agentId;
    } else if (ends.has(event.type)) {
      holder = null;
    }
  }
  return problems;
}

/** Resolves when `check` returns true, polling every `everyMs`; for state held by another process. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
