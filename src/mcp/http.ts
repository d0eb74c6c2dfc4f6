import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { RosterError, coerceError } from "../errors.js";
import { serveHttp } from "../http-listen.js";
import { HostCheck, bearerOf, bindingOf, hostnameOf, listeningUrl, secretsMatch } from "../http-access.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";
import { MCP_PROFILES, createMcpContext, type McpContext, type McpProfile } from "./context.js";
import { connectMcp, createMcpServer, endMcpSession, mcpSessionAgent } from "./server.js";

export const MCP_HTTP_PATH = "/mcp";
export const MCP_HTTP_HOST_DEFAULT = "127.0.0.1";
/** Largest request body read, in bytes. */
export const MCP_HTTP_MAX_BODY_BYTES = 4 * 1024 * 1024;
/**
 * Open sessions at once. At the limit a new session closes the least recently active one that
 * holds nothing (no agent yet: never called a tool that needed one, so no lease, no agent to
 * deregister); only when every session has an agent does initialize get 503. Clients that
 * open sessions and never use them (a reconnect loop, the SDK's Client.close(), which sends no
 * DELETE) thus never lock working agents out.
 */
export const MCP_HTTP_MAX_SESSIONS = 1_000;
/** A session with no open request or stream for this long is closed (its client went away without DELETE), in ms. */
export const MCP_HTTP_SESSION_IDLE_MS = 30 * 60_000;
/** The same for a session that holds nothing (no agent yet), in ms. */
export const MCP_HTTP_UNUSED_SESSION_IDLE_MS = 5 * 60_000;

export interface McpHttpOptions {
  store: Store;
  /** Interface to bind; 127.0.0.1 unless asked. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** A server already bound to host:port (src/http-listen.ts), as `roster start` binds before it writes anything. */
  listening?: Server;
  /** Bearer token every request must carry; none when absent (unless `tokens` are given). */
  token?: string | undefined;
  /**
   * Tokens that each open only one profile (say a worker's token: worker tools only).
   * With any, a request must carry `token` (every profile) or one of these.
   */
  tokens?: ReadonlyArray<{ token: string; profile: McpProfile }>;
  /** Profile served at /mcp (default "all"); /mcp/worker, /mcp/planner and /mcp/all serve theirs, within the token's. */
  profile?: McpProfile;
  /** Extra Host header names (without port) to accept, for a non-loopback bind behind a name. */
  allowedHosts?: string[];
  /** Close sessions idle this long, in ms. Default MCP_HTTP_SESSION_IDLE_MS. */
  sessionIdleMs?: number;
  /** Open sessions at once. Default MCP_HTTP_MAX_SESSIONS. */
  maxSessions?: number;
  /** Extra Origin values (scheme://host[:port]) to accept from browsers. */
  allowedOrigins?: string[];
  clock?: Clock;
  logger?: Logger;
  /** Share a context (lease book, change feed) with another server in the process. */
  context?: McpContext;
}

export interface McpHttpServer {
  /** e.g. http://127.0.0.1:4123/mcp */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

function sendJsonRpcError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: status === 401 ? -32001 : -32000, message }, id: null }));
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

interface Session {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  profile: McpProfile;
  /** Requests or SSE streams still open. */
  open: number;
  lastActiveAt: number;
}

/**
 * Off loopback, MCP over HTTP needs a token: its tools create and cancel tasks, including tasks
 * of shell personas, so an open port on the network would run anyone's commands (the dashboard
 * refuses the same, src/ui/guard.ts). Checked before `roster start` binds anything.
 */
export function checkMcpBind(options: { host?: string | undefined; token?: string | undefined; tokens?: readonly { token: string }[] | undefined }): void {
  const host = options.host ?? MCP_HTTP_HOST_DEFAULT;
  if (bindingOf(host).loopback || options.token !== undefined || (options.tokens ?? []).length > 0) return;
  throw new RosterError(
    "CONFIG_INVALID",
    `mcp.host: ${host} is not a loopback address; serving MCP there needs a token (--mcp-token or ROSTER_MCP_TOKEN, or --mcp-worker-token / --mcp-planner-token)`,
    { details: { field: "mcp.token" } },
  );
}

/**
 * MCP over Streamable HTTP (stateful sessions), for `roster start --mcp-port N`.
 * Binds 127.0.0.1 unless another host is asked for. Every request passes, in order:
 *  1. the Host check against DNS rebinding: the Host header's name must be a loopback
 *     name when bound to loopback; bound elsewhere, a loopback name, an IP address (a
 *     rebinding attack needs a domain name), the bound name or one of allowedHosts → 403;
 *  2. the Origin check, when a browser sends one: its host must pass the same test,
 *     or the origin be listed in allowedOrigins → 403;
 *  3. the bearer token, when one is set, compared in constant time → 401.
 * Each initialize request opens a session with its own McpServer; all sessions share
 * one context (store, lease book, change feed). Waiting claims re-read every 250 ms
 * rather than read `store.hasExternalChanges()`, which the supervisor's waker owns.
 */
export async function startMcpHttp(options: McpHttpOptions): Promise<McpHttpServer> {
  const host = options.host ?? MCP_HTTP_HOST_DEFAULT;
  checkMcpBind(options);
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    throw new RosterError("CONFIG_INVALID", `mcp.port: must be an integer from 0 to 65535, got ${String(options.port)}`, { details: { field: "mcp.port" } });
  }
  if (options.sessionIdleMs !== undefined && (!Number.isInteger(options.sessionIdleMs) || options.sessionIdleMs < 1)) {
    throw new RosterError("CONFIG_INVALID", `sessionIdleMs: must be a positive integer, got ${String(options.sessionIdleMs)}`, { details: { field: "sessionIdleMs" } });
  }
  if (options.token !== undefined && options.token === "") {
    throw new RosterError("CONFIG_INVALID", "mcp.token: must not be empty", { details: { field: "mcp.token" } });
  }
  for (const [index, entry] of (options.tokens ?? []).entries()) {
    if (entry.token === "") throw new RosterError("CONFIG_INVALID", `mcp.tokens[${index}].token: must not be empty`, { details: { field: `mcp.tokens[${index}].token` } });
    if (!(MCP_PROFILES as readonly string[]).includes(entry.profile)) {
      throw new RosterError("CONFIG_INVALID", `mcp.tokens[${index}].profile: must be one of ${MCP_PROFILES.join(", ")}`, { details: { field: `mcp.tokens[${index}].profile` } });
    }
  }
  // Beside a supervisor (roster start), which reads the store's consume-once
  // hasExternalChanges flag: waiting claims re-read instead of polling it.
  const ctx =
    options.context ??
    createMcpContext({
      store: options.store,
      externalChanges: "recheck",
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  const logger = ctx.logger.child({ component: "mcp-http" });
  const profile = options.profile ?? "all";
  const access = new HostCheck({ ...bindingOf(host), allowedHosts: options.allowedHosts, allowedOrigins: options.allowedOrigins });
  const sessions = new Map<string, Session>();
  const maxSessions = options.maxSessions ?? MCP_HTTP_MAX_SESSIONS;
  const scoped = options.tokens ?? [];
  /** The profiles a request's token opens: "all" for the main token (or when none is set), a scoped token's own, or null. */
  const tokenProfile = (req: IncomingMessage): McpProfile | null => {
    if (options.token === undefined && scoped.length === 0) return "all";
    const given = bearerOf(req) ?? "";
    // Every candidate is compared (constant time each), so timing does not say which matched.
    let found: McpProfile | null = null;
    if (options.token !== undefined && secretsMatch(given, options.token)) found = "all";
    for (const entry of scoped) if (secretsMatch(given, entry.token) && found === null) found = entry.profile;
    return found;
  };

  const openSession = async (sessionProfile: McpProfile): Promise<StreamableHTTPServerTransport> => {
    const server = await createMcpServer(ctx, { profile: sessionProfile });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sessionId) => {
        sessions.set(sessionId, { transport, server, profile: sessionProfile, open: 0, lastActiveAt: Date.now() });
        logger.debug({ sessionId }, "mcp session opened");
      },
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id !== undefined && sessions.delete(id)) logger.debug({ sessionId: id }, "mcp session closed");
    };
    await connectMcp(server, transport);
    return transport;
  };

  // Wall-clock bookkeeping of HTTP connections, not task time: no Clock needed.
  const track = (session: Session, res: ServerResponse): void => {
    session.open++;
    session.lastActiveAt = Date.now();
    res.once("close", () => {
      session.open--;
      session.lastActiveAt = Date.now();
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    if (!access.nameAllowed(hostnameOf(req.headers.host ?? ""))) {
      logger.warn({ host: req.headers.host }, "mcp request refused: Host header not allowed");
      return sendJsonRpcError(res, 403, `Forbidden: Host header "${req.headers.host ?? ""}" is not allowed`);
    }
    if (!access.originAllowed(req.headers.origin)) {
      logger.warn({ origin: req.headers.origin }, "mcp request refused: Origin not allowed");
      return sendJsonRpcError(res, 403, `Forbidden: Origin "${req.headers.origin ?? ""}" is not allowed`);
    }
    const allowed = tokenProfile(req);
    if (allowed === null) return sendJsonRpcError(res, 401, "Unauthorized: a valid bearer token is required", { "www-authenticate": "Bearer" });
    const endpoint = path === MCP_HTTP_PATH ? null : MCP_PROFILES.find((p) => path === `${MCP_HTTP_PATH}/${p}`);
    if (endpoint === undefined) return sendJsonRpcError(res, 404, `Not found: MCP is served at ${MCP_HTTP_PATH} and ${MCP_PROFILES.map((p) => `${MCP_HTTP_PATH}/${p}`).join(", ")}`);
    // /mcp serves the configured profile, narrowed to a scoped token's; /mcp/<profile> that profile, if the token opens it.
    const wanted: McpProfile = endpoint ?? (allowed === "all" ? profile : allowed);
    if (allowed !== "all" && allowed !== wanted) return sendJsonRpcError(res, 403, `Forbidden: this token opens the ${allowed} profile only`);
    if (profile !== "all" && wanted !== profile) return sendJsonRpcError(res, 403, `Forbidden: this server serves the ${profile} profile only`);

    const sessionHeader = req.headers["mcp-session-id"];
    const sessionId = Array.isArray(sessionHeader) ? sessionHeader[0] : sessionHeader;
    const session = sessionId === undefined ? undefined : sessions.get(sessionId);
    if (sessionId !== undefined && (session === undefined || session.profile !== wanted)) return sendJsonRpcError(res, 404, "Session not found");
    if (session !== undefined) track(session, res);

    if (req.method !== "POST") {
      if (session === undefined) return sendJsonRpcError(res, 400, "Bad Request: mcp-session-id header required");
      return session.transport.handleRequest(req, res);
    }
    const raw = await readBody(req, MCP_HTTP_MAX_BODY_BYTES);
    if (raw === null) return sendJsonRpcError(res, 413, `Payload too large: over ${MCP_HTTP_MAX_BODY_BYTES} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (error) {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32700, message: `Parse error: ${coerceError(error).message}` }, id: null }));
      return;
    }
    if (session !== undefined) return session.transport.handleRequest(req, res, body);
    if (!isInitializeRequest(body)) return sendJsonRpcError(res, 400, "Bad Request: no session; send initialize first");
    if (sessions.size >= maxSessions && !closeUnusedSession()) return sendJsonRpcError(res, 503, `Too many open sessions (${maxSessions}, each with an agent)`);
    const transport = await openSession(wanted);
    await transport.handleRequest(req, res, body);
  };

  const http: Server = await serveHttp(options.listening, { what: "mcp", host, port: options.port, hint: "set --mcp-port" }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: coerceError(error) }, "mcp request failed");
      sendJsonRpcError(res, 500, "Internal server error");
    });
  });
  const idleMs = options.sessionIdleMs ?? MCP_HTTP_SESSION_IDLE_MS;
  const unusedIdleMs = Math.min(idleMs, MCP_HTTP_UNUSED_SESSION_IDLE_MS);
  const closeSession = (id: string, session: Session, why: string): void => {
    sessions.delete(id);
    logger.debug({ sessionId: id }, why);
    // Closing ends the session: its agent is deregistered and its leases released.
    void session.server.close();
  };
  /** At the session limit: closes the least recently active session that holds nothing; false if every one has an agent. */
  function closeUnusedSession(): boolean {
    let oldest: [string, Session] | null = null;
    for (const entry of sessions) {
      const s = entry[1];
      if (s.open > 0 || mcpSessionAgent(s.server) !== null) continue;
      if (oldest === null || s.lastActiveAt < oldest[1].lastActiveAt) oldest = entry;
    }
    if (oldest === null) return false;
    closeSession(oldest[0], oldest[1], "closing an unused mcp session: the session limit is reached");
    return true;
  }
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const [id, session] of sessions) {
      if (session.open > 0) continue;
      const limit = mcpSessionAgent(session.server) === null ? unusedIdleMs : idleMs;
      if (session.lastActiveAt < now - limit) closeSession(id, session, "closing idle mcp session");
    }
  }, Math.min(60_000, Math.max(10, Math.floor(unusedIdleMs / 2))));
  sweeper.unref();
  const address = http.address() as AddressInfo;
  const url = listeningUrl(address, MCP_HTTP_PATH);
  logger.debug({ url, token: options.token !== undefined }, "mcp http listening");

  let closing: Promise<void> | null = null;
  return {
    url,
    host: address.address,
    port: address.port,
    close: () =>
      (closing ??= (async () => {
        clearInterval(sweeper);
        // Stopping: each session's last writes are tried once, not retried while the database is away.
        if (options.context === undefined) ctx.stopping.abort();
        const open = [...sessions.values()];
        sessions.clear();
        await Promise.allSettled(open.map(async (s) => {
          // The server stops, not the client: its agent's leases go back uncounted and not lost (rule 10).
          const ended = endMcpSession(s.server, { serverStopping: true });
          await s.server.close();
          await ended;
        }));
        if (options.context === undefined) ctx.changes.stop();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
      })()),
  };
}
