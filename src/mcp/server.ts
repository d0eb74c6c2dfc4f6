import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { McpContext, McpProfile } from "./context.js";
import { registerPersonaTools } from "./tools/personas.js";
import { registerPlannerTools } from "./tools/planner.js";
import { registerWorkerTools } from "./tools/worker.js";

export const MCP_SERVER_NAME = "roster";
export const MCP_SERVER_VERSION = "0.1.0";

const INSTRUCTIONS: Record<McpProfile, string> = {
  planner:
    "roster task queue, planner tools. Break a goal into tasks with create_tasks (refs + dependsOn, atomic), " +
    "follow them with get_progress (rootId) and list_tasks, inspect with get_task, steer with cancel_task / retry_task.",
  worker:
    "roster task queue, worker tools. Loop: register_agent once; claim_task (persona, waitMs); while working call " +
    "heartbeat every task.heartbeatEveryMs (leaseMs/3) and report_progress; finish with complete_task or fail_task " +
    "(or release_task). LEASE_LOST means the task is no longer yours: stop and drop the work.",
  all: "",
};
INSTRUCTIONS.all = `${INSTRUCTIONS.planner} ${INSTRUCTIONS.worker}`;

/**
 * One MCP server (one session) over the shared context. The profile decides which
 * tools it lists: `planner`, `worker` (kept small: it is sent to every worker
 * agent's model), or `all`. Personas (tool, prompts, resources) are in every profile.
 */
export async function createMcpServer(ctx: McpContext, options: { profile?: McpProfile } = {}): Promise<McpServer> {
  const profile = options.profile ?? "all";
  const server = new McpServer(
    { name: MCP_SERVER_NAME, version: MCP_SERVER_VERSION },
    { instructions: INSTRUCTIONS[profile], capabilities: { tools: {}, prompts: {}, resources: {} } },
  );
  if (profile === "planner" || profile === "all") registerPlannerTools(server, ctx);
  if (profile === "worker" || profile === "all") registerWorkerTools(server, ctx);
  await registerPersonaTools(server, ctx);
  return server;
}
