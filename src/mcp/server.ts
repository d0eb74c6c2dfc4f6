import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { packageVersion } from "../cli/package-info.js";
import type { McpContext, McpProfile } from "./context.js";
import { McpSession } from "./session.js";
import { ToolTable } from "./tool.js";
import { registerPersonaTools } from "./tools/personas.js";
import { registerHumanTools, registerInputRequestTool } from "./tools/humans.js";
import { registerPlannerTools } from "./tools/planner.js";
import { personaInService, registerAgentTool, registerWorkerTools } from "./tools/worker.js";

export const MCP_SERVER_NAME = "roster";
/** roster's own version (package.json), as `roster --version` prints it: one version for the CLI and the server. */
export const MCP_SERVER_VERSION = packageVersion();

const ERRORS =
  "Errors are {error:{code,message,field}} with isError; fix the named field and call again.";
const INSTRUCTIONS: Record<McpProfile, string> = {
  planner:
    "roster task queue, planner tools. create_goal makes a goal and its plan in one step (the goal runs after its tasks); " +
    "create_tasks adds tasks (refs + dependsOn). Poll get_progress(rootId) until settled is true; act on needsAttention " +
    "(get_task, retry_task, cancel_task, more tasks; for parked tasks answer_task, approve_task, reject_task; why says what " +
    "holds any task back). done means every task completed.",
  worker:
    "roster task queue, worker tools. Loop: claim_task(persona, waitMs) until it returns a task; work on it, calling heartbeat " +
    "every task.heartbeatEveryMs; finish with complete_task(result) or fail_task(error), or release_task (skip:true if it is " +
    "not for you). A lost answer: call complete_task again with the same leaseToken. LEASE_LOST: stop that task, drop its result. " +
    "Big dependency results come cut (truncated): read_task(taskId, offset) reads the rest. To ask a person, request_input " +
    "(the task waits for the answer; a later claim has it in task.inputs).",
  all: "",
};
INSTRUCTIONS.all = `${INSTRUCTIONS.planner} ${INSTRUCTIONS.worker}`;
for (const profile of Object.keys(INSTRUCTIONS) as McpProfile[]) INSTRUCTIONS[profile] += ` ${ERRORS}`;

const sessions = new WeakMap<McpServer, McpSession>();

/**
 * One MCP server (one session) over the shared context. The profile decides which
 * tools it lists: `planner`, `worker` (kept small: it is sent to every worker
 * agent's model), or `all`. Personas (tool, prompts, resources) are in every
 * profile. The session's agent is deregistered when its transport closes; await
 * endMcpSession(server) to know it is done.
 */
export async function createMcpServer(ctx: McpContext, options: { profile?: McpProfile } = {}): Promise<McpServer> {
  const profile = options.profile ?? "all";
  const server = new McpServer(
    { name: MCP_SERVER_NAME, version: MCP_SERVER_VERSION },
    { instructions: INSTRUCTIONS[profile], capabilities: { tools: {}, prompts: { listChanged: true }, resources: {} } },
  );
  const session = new McpSession(ctx, () => server.server.getClientVersion()?.name);
  const tools = new ToolTable(server, (run) => session.call(run));
  if (profile === "planner" || profile === "all") {
    registerPlannerTools(tools, ctx, session);
    registerHumanTools(tools, ctx, session);
  }
  if (profile === "worker" || profile === "all") {
    registerWorkerTools(tools, ctx, session);
    registerInputRequestTool(tools, ctx, session);
  } else registerAgentTool(tools, session, (id) => personaInService(ctx, id));
  const stopPrompts = await registerPersonaTools(tools, server, ctx);
  tools.install();
  session.onEnd = stopPrompts;
  sessions.set(server, session);
  server.server.onclose = () => void session.end();
  return server;
}

/** The agent the server's session acts as; null until a tool needed one (such a session holds nothing). */
export function mcpSessionAgent(server: McpServer): string | null {
  return sessions.get(server)?.agent ?? null;
}

/**
 * Connects the server to its transport, and tells its session of each request the client
 * cancels (notifications/cancelled), before the SDK sees it: a claim already answered when
 * its cancel arrives was dropped by the client (the protocol's own race: the client ignores
 * an answer that comes after it cancelled), so its lease goes back (tools/worker.ts).
 * `onCancelled` hears of them too (stdio's drain stops waiting for their answers).
 */
export async function connectMcp(server: McpServer, transport: Transport, options: { onCancelled?: (requestId: string | number) => void } = {}): Promise<void> {
  await server.connect(transport);
  const receive = transport.onmessage;
  transport.onmessage = (message: JSONRPCMessage, extra) => {
    if ("method" in message && message.method === "notifications/cancelled" && !("id" in message)) {
      const requestId = message.params?.["requestId"];
      if (typeof requestId === "string" || typeof requestId === "number") {
        sessions.get(server)?.cancelled(requestId);
        options.onCancelled?.(requestId);
      }
    }
    receive?.(message, extra);
  };
}

/**
 * Ends the server's session (deregisters its agent, releasing its leases, each a lost lease
 * unless `serverStopping`: McpSession.endsWithServer); resolves when done.
 */
export function endMcpSession(server: McpServer, options: { serverStopping?: boolean } = {}): Promise<void> {
  const session = sessions.get(server);
  if (session === undefined) return Promise.resolve();
  return options.serverStopping === true ? session.endsWithServer() : session.end();
}
