import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { systemClock, type Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";
import { UiError, toUiError, type ApiContext } from "./api.js";
import { hostnameOf, listeningUrl, secretsMatch } from "../http-access.js";
import { serveHttp } from "../http-listen.js";
import { Guard, checkUiOptions, UI_SESSION_COOKIE } from "./guard.js";
import { jsonBody, sendError, sendJson } from "./http.js";
import { ChangeFeed } from "./live.js";
import { routeAction, routeRead } from "./routes.js";
import { UI_PUBLIC_DIR, serveStatic } from "./static.js";

/** Header an action must carry: the session's CSRF token (GET /api/session says it). */
export const UI_CSRF_HEADER = "x-roster-csrf";

export interface UiServerOptions {
  store: Store;
  /** 127.0.0.1 unless asked; any other address needs `token`. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Bearer token (or the login that sets a session cookie); required off loopback. */
  token?: string | undefined;
  /** Extra Host names (without port) to accept, for a bind behind a name. */
  allowedHosts?: string[];
  /** Extra Origin values (scheme://host[:port]) to accept. */
  allowedOrigins?: string[];
  /** Recorded as the actor of every action: "ui:<user>". */
  user?: string;
  /**
   * "own": this process owns the store's consume-once hasExternalChanges (roster ui);
   * "shared": a supervisor in the process owns it (roster start --ui-port), so other
   * processes' writes are seen through the watch hint alone (and the supervisor's own events).
   */
  externalChanges?: "own" | "shared";
  /** Fallback poll of hasExternalChanges in "own" mode, in ms (a cheap PRAGMA, not a table read). Default 2000. */
  externalPollMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** A server already bound to host:port (src/http-listen.ts), as `roster start` binds before it writes anything. */
  listening?: Server;
  /** Folder of the built front end; default UI_PUBLIC_DIR. */
  publicDir?: string;
}

export interface UiServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The dashboard's HTTP server: the built front end at / (src/ui/static.ts), the JSON API
 * under /api (src/ui/routes.ts → src/ui/api.ts), change notices over Server-Sent Events at
 * /api/events (src/ui/live.ts). Every request passes, in order (as the MCP HTTP server's
 * do; the checks are src/ui/guard.ts):
 *  1. the Host check against DNS rebinding: a loopback name when bound to loopback;
 *     bound elsewhere, also an IP address, the bound name or an allowed host → 403;
 *  2. the Origin check when a browser sends one: its host must pass the same test or
 *     the origin be allowed → 403;
 *  3. with a token: `Authorization: Bearer <token>`, or the session cookie that
 *     POST /api/login {token} sets (HttpOnly, SameSite=Strict) → 401;
 *  4. every action (POST other than login): a JSON body, and unless it came with the
 *     bearer token (which a browser never adds by itself), the header
 *     x-roster-csrf equal to the session's token (GET /api/session) → 403.
 * Off loopback it refuses to start without a token.
 */
export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const { host, bindName, loopback } = checkUiOptions(options);
  const clock = options.clock ?? systemClock;
  const logger = options.logger?.child({ component: "ui" });
  const publicDir = options.publicDir ?? UI_PUBLIC_DIR;
  const by = `ui:${options.user ?? "dashboard"}`;
  const api: ApiContext = { store: options.store, clock, by };
  const guard = new Guard({ bindName, loopback, token: options.token, allowedHosts: options.allowedHosts, allowedOrigins: options.allowedOrigins, clock });
  const mode = options.externalChanges ?? "own";
  const feed = new ChangeFeed({ store: options.store, mode, externalPollMs: options.externalPollMs ?? 2_000, clock, logger });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (!guard.nameAllowed(hostnameOf(req.headers.host ?? ""))) {
      logger?.warn({ host: req.headers.host }, "ui request refused: Host header not allowed");
      return sendError(res, new UiError(403, "FORBIDDEN", `Host header "${req.headers.host ?? ""}" is not allowed`));
    }
    if (!guard.originAllowed(req.headers.origin)) {
      logger?.warn({ origin: req.headers.origin }, "ui request refused: Origin not allowed");
      return sendError(res, new UiError(403, "FORBIDDEN", `Origin "${req.headers.origin ?? ""}" is not allowed`));
    }
    if (!path.startsWith("/api/")) {
      if (method !== "GET" && method !== "HEAD") return sendError(res, new UiError(405, "METHOD_NOT_ALLOWED", `${method} ${path}: only GET`), { allow: "GET, HEAD" });
      // The page itself is public: it holds no data and asks /api/session whether to show the login.
      return serveStatic(publicDir, res, path, method === "HEAD");
    }
    const viaBearer = guard.bearerOk(req);
    let session = guard.sessionOf(req);
    if (path === "/api/login") {
      if (method !== "POST") return sendError(res, new UiError(405, "METHOD_NOT_ALLOWED", "login: POST {token}"), { allow: "POST" });
      const body = await jsonBody(req);
      const token = (body as { token?: unknown } | null)?.token;
      if (typeof token !== "string" || token === "") throw new UiError(400, "VALIDATION", "token: required", "token");
      if (!guard.tokenMatches(token)) {
        logger?.warn("ui login refused: wrong token");
        throw new UiError(401, "UNAUTHORIZED", "token: not the dashboard's token", "token");
      }
      session = guard.newSession(res);
      return sendJson(res, 200, { ok: true, csrf: session.csrf, user: by });
    }
    const authed = options.token === undefined || viaBearer || session !== undefined;
    if (!authed) return sendError(res, new UiError(401, "UNAUTHORIZED", "a valid bearer token or a login is required"), { "www-authenticate": "Bearer" });
    if (path === "/api/session") {
      if (method !== "GET") return sendError(res, new UiError(405, "METHOD_NOT_ALLOWED", "session: GET"), { allow: "GET" });
      session ??= guard.newSession(res);
      return sendJson(res, 200, { csrf: session.csrf, user: by, authRequired: options.token !== undefined, mode });
    }
    if (path === "/api/logout" && method === "POST") {
      guard.endSession(req);
      return sendJson(res, 200, { ok: true }, { "set-cookie": `${UI_SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
    }
    if (method === "GET" || method === "HEAD") return routeRead(api, feed, req, res, url);
    if (method !== "POST") return sendError(res, new UiError(405, "METHOD_NOT_ALLOWED", `${method} ${path}: reads are GET, actions POST`), { allow: "GET, POST" });
    // An action: CSRF first, before the body is read or anything is looked up.
    if (!viaBearer) {
      const given = req.headers[UI_CSRF_HEADER];
      if (session === undefined || typeof given !== "string" || !secretsMatch(given, session.csrf)) {
        logger?.warn({ path }, "ui action refused: CSRF token missing or wrong");
        return sendError(res, new UiError(403, "CSRF", `${UI_CSRF_HEADER}: missing or not this session's token (GET /api/session)`, UI_CSRF_HEADER));
      }
    }
    const body = await jsonBody(req);
    const result = await routeAction(api, path, body);
    logger?.info({ path, by }, "ui action");
    return sendJson(res, 200, result);
  };

  let http: Server;
  try {
    http = await serveHttp(options.listening, { what: "ui", host, port: options.port }, (req, res) => {
      route(req, res).catch((error: unknown) => {
        const e = toUiError(error);
        if (e.status >= 500) logger?.error({ err: coerceError(error) }, "ui request failed");
        sendError(res, e);
      });
    });
  } catch (error) {
    feed.close();
    throw error;
  }
  http.keepAliveTimeout = 5_000;
  const address = http.address() as AddressInfo;
  const url = listeningUrl(address, "/");
  logger?.debug({ url, token: options.token !== undefined }, "ui listening");
  let closing: Promise<void> | null = null;
  return {
    url,
    host: address.address,
    port: address.port,
    close: () =>
      (closing ??= (async () => {
        feed.close();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
      })()),
  };
}
