/** roster's MCP server: external agents as planners and workers over the same store. */
export { MCP_PROFILES, createMcpContext, parseProfile, type McpContext, type McpContextOptions, type McpProfile } from "./context.js";
export { createMcpServer, endMcpSession, MCP_SERVER_NAME, MCP_SERVER_VERSION } from "./server.js";
export { serveMcpStdio, type McpStdioSession } from "./stdio.js";
export { checkMcpBind, startMcpHttp, MCP_HTTP_PATH, MCP_HTTP_HOST_DEFAULT, type McpHttpOptions, type McpHttpServer } from "./http.js";
export { McpLeaseReaper } from "./reaper.js";
export { HEARTBEAT_DIVISOR } from "./claim-view.js";
export { WAIT_MS_MAX, LIST_LIMIT_MAX, HEARTBEAT_TIMEOUT_MS_DEFAULT } from "./schemas.js";
