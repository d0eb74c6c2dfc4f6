import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIP, type AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { systemClock, type Clock } from "../clock.js";
import { RosterError, coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { Store, StoreEventName } from "../store/index.js";
import { TASK_ACTIONS, UiError, addPlan, addTask, goalGraph, listTasks, overview, parseId, taskAction, taskDetail, toUiError, type ApiContext, type TaskAction } from "./api.js";

export const UI_HOST_DEFAULT = "127.0.0.1";
export const UI_MAX_BODY_BYTES = 2 * 1024 * 1024;
/** Header an action must carry: the session's CSRF token (GET /api/session says it). */
export const UI_CSRF_HEADER = "x-roster-csrf";
export const UI_SESSION_COOKIE = "roster_ui";
/** Sessions kept at once; the oldest is dropped past this. */
export const UI_MAX_SESSIONS = 10_000;
/** Change notices to browsers are sent at most this often, in ms. */
export const UI_PUSH_INTERVAL_MS = 200;

const LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]", "::1"];
/** The built front end (vite writes it here; see src/ui/web/vite.config.mjs). */
export const UI_PUBLIC_DIR = fileURLToPath(new URL("./public/", import.meta.url));

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
  /** Folder of the built front end; default UI_PUBLIC_DIR. */
  publicDir?: string;
}

export interface UiServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

interface Session {
  csrf: string;
  createdAt: number;
}

function hostnameOf(authority: string): string | null {
  const value = authority.trim().toLowerCase();
  if (value === "") return null;
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    return end === -1 ? null : value.slice(0, end + 1);
  }
  const colon = value.indexOf(":");
  return colon === -1 ? value : value.slice(0, colon);
}

function secretsMatch(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, error: UiError, headers: Record<string, string> = {}): void {
  sendJson(res, error.status, { error: { code: error.code, message: error.message, ...(error.field !== undefined ? { field: error.field } : {}) } }, headers);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > UI_MAX_BODY_BYTES) {
        reject(new UiError(413, "PAYLOAD_TOO_LARGE", `body: over ${UI_MAX_BODY_BYTES} bytes`, "body"));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
};

/** Store events that change what a page shows; each becomes part of the next change notice. */
const WATCHED: StoreEventName[] = [
  "task:enqueued",
  "task:claimed",
  "task:started",
  "task:completed",
  "task:retrying",
  "task:failed",
  "task:released",
  "task:cancelled",
  "task:retried",
  "task:ready",
  "lease:expired",
  "agent:registered",
  "agent:expired",
  "agent:deregistered",
  "usage:recorded",
  "provider:paused",
  "provider:resumed",
  "breaker:opened",
  "breaker:closed",
];

/**
 * The bind checks, before anything is opened or written (the commands call it first):
 * a port in range, a token of 8 characters or more, and a token whenever the host is not
 * a loopback address.
 */
export function checkUiOptions(options: Pick<UiServerOptions, "host" | "port" | "token">): { host: string; bindName: string; loopback: boolean } {
  const host = options.host ?? UI_HOST_DEFAULT;
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    throw new RosterError("CONFIG_INVALID", `ui.port: must be an integer from 0 to 65535, got ${String(options.port)}`, { details: { field: "ui.port" } });
  }
  if (options.token !== undefined && options.token.length < 8) {
    throw new RosterError("CONFIG_INVALID", "ui.token: must be at least 8 characters", { details: { field: "ui.token" } });
  }
  const bindName = hostnameOf(host.includes(":") && !host.startsWith("[") ? `[${host}]` : host) ?? host;
  const loopback = LOOPBACK_NAMES.includes(bindName);
  if (!loopback && options.token === undefined) {
    throw new RosterError("CONFIG_INVALID", `ui.host: ${host} is not a loopback address; serving the dashboard there needs a token (--token or ROSTER_UI_TOKEN)`, {
      details: { field: "ui.token" },
    });
  }
  return { host, bindName, loopback };
}

/**
 * The dashboard's HTTP server: the built front end at /, the JSON API under /api,
 * change notices over Server-Sent Events at /api/events. Every request passes, in
 * order (as the MCP HTTP server's do):
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
  const allowedNames = new Set<string>([...LOOPBACK_NAMES, ...(loopback ? [] : [bindName]), ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  const allowedOrigins = new Set((options.allowedOrigins ?? []).map((o) => o.toLowerCase()));
  const sessions = new Map<string, Session>();

  const nameAllowed = (name: string | null): boolean => name !== null && (allowedNames.has(name) || (!loopback && isIP(name.replace(/^\[(.*)\]$/, "$1")) !== 0));
  const originAllowed = (origin: string | undefined): boolean => {
    if (origin === undefined) return true;
    if (allowedOrigins.has(origin.toLowerCase())) return true;
    try {
      return nameAllowed(hostnameOf(new URL(origin).host));
    } catch {
      return false;
    }
  };
  const bearerOk = (req: IncomingMessage): boolean => {
    if (options.token === undefined) return false;
    const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1]?.trim();
    return given !== undefined && secretsMatch(given, options.token);
  };
  const sessionOf = (req: IncomingMessage): Session | undefined => {
    const id = cookieOf(req, UI_SESSION_COOKIE);
    return id === undefined ? undefined : sessions.get(id);
  };
  const newSession = (res: ServerResponse): Session => {
    const id = randomBytes(32).toString("base64url");
    const session = { csrf: randomBytes(32).toString("base64url"), createdAt: clock.now() };
    if (sessions.size >= UI_MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    sessions.set(id, session);
    res.setHeader("set-cookie", `${UI_SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/`);
    return session;
  };

  // ---- live change notices -------------------------------------------------------------
  const clients = new Set<ServerResponse>();
  let pendingKinds = new Set<string>();
  let pendingTasks = new Set<number>();
  let pendingProgress = new Map<number, { fraction: number; message: string | null }>();
  let flushTimer: NodeJS.Timeout | null = null;
  let lastFlush = 0;
  const flush = (): void => {
    flushTimer = null;
    lastFlush = Date.now();
    if (pendingKinds.size === 0 && pendingProgress.size === 0) return;
    const data = JSON.stringify({
      kinds: [...pendingKinds],
      tasks: pendingTasks.size > 500 ? null : [...pendingTasks],
      progress: [...pendingProgress].map(([id, p]) => ({ id, ...p })),
    });
    pendingKinds = new Set();
    pendingTasks = new Set();
    pendingProgress = new Map();
    for (const res of clients) res.write(`event: change\ndata: ${data}\n\n`);
  };
  const schedule = (): void => {
    if (flushTimer !== null || clients.size === 0) return;
    flushTimer = setTimeout(flush, Math.max(0, UI_PUSH_INTERVAL_MS - (Date.now() - lastFlush)));
  };
  const note = (kind: string, ids: number[] = []): void => {
    if (clients.size === 0) return;
    pendingKinds.add(kind);
    for (const id of ids) pendingTasks.add(id);
    schedule();
  };
  const unsubscribe: Array<() => void> = [];
  for (const name of WATCHED) {
    unsubscribe.push(
      options.store.events.on(name, (payload: unknown) => {
        const p = payload as { taskId?: number; ids?: number[]; taskIds?: number[]; tasks?: Array<{ id: number }> };
        const ids = [...(p.ids ?? []), ...(p.taskIds ?? []), ...(p.tasks ?? []).map((t) => t.id), ...(p.taskId !== undefined ? [p.taskId] : [])];
        note(name, ids);
      }),
    );
  }
  unsubscribe.push(
    options.store.events.on("task:progress", (p) => {
      if (clients.size === 0) return;
      pendingProgress.set(p.taskId, { fraction: p.fraction, message: p.message });
      schedule();
    }),
  );
  // Other processes' writes: the watch the supervisor's waker uses, confirmed with
  // hasExternalChanges when this process owns it, plus a slow fallback poll of it.
  const mode = options.externalChanges ?? "own";
  let checking = false;
  let hinted: NodeJS.Timeout | null = null;
  const checkExternal = async (): Promise<void> => {
    if (checking || clients.size === 0) return;
    if (mode === "shared") {
      // The watch fires for the supervisor's own writes too (lease renewals every few
      // seconds), and it cannot be confirmed here: one notice a second at most.
      hinted ??= setTimeout(() => {
        hinted = null;
        note("external");
      }, 1_000);
      return;
    }
    checking = true;
    try {
      if (await options.store.hasExternalChanges()) note("external");
    } catch (error) {
      logger?.debug({ err: coerceError(error) }, "external change check failed");
    } finally {
      checking = false;
    }
  };
  unsubscribe.push(options.store.watchExternalChanges(() => void checkExternal()));
  const poll = mode === "own" ? setInterval(() => void checkExternal(), options.externalPollMs ?? 2_000) : null;
  poll?.unref();
  const keepAlive = setInterval(() => {
    for (const res of clients) res.write(`: keep-alive\n\n`);
  }, 15_000);
  keepAlive.unref();

  // ---- requests ------------------------------------------------------------------------
  const serveStatic = (res: ServerResponse, path: string, head: boolean): void => {
    let rel = normalize(decodeURIComponent(path)).replace(/^([/\\])+/, "");
    if (rel === "" || !extname(rel)) rel = "index.html"; // client-side routes
    const file = join(publicDir, rel);
    if (!file.startsWith(publicDir.endsWith(sep) ? publicDir : publicDir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      if (rel === "index.html") {
        res.writeHead(503, { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" });
        res.end(`the dashboard's front end is not built (${publicDir} is missing): run npm run build\n`);
        return;
      }
      return sendError(res, new UiError(404, "NOT_FOUND", `no such file: /${rel}`));
    }
    const body = readFileSync(file);
    const immutable = rel.startsWith("assets/");
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": String(body.length),
      "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-store",
      "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    });
    res.end(head ? undefined : body);
  };

  const openEvents = (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive" });
    res.write(`retry: 2000\nevent: hello\ndata: {"at":${clock.now()}}\n\n`);
    clients.add(res);
    req.once("close", () => clients.delete(res));
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (!nameAllowed(hostnameOf(req.headers.host ?? ""))) {
      logger?.warn({ host: req.headers.host }, "ui request refused: Host header not allowed");
      return sendError(res, new UiError(403, "FORBIDDEN", `Host header "${req.headers.host ?? ""}" is not allowed`));
    }
    if (!originAllowed(req.headers.origin)) {
      logger?.warn({ origin: req.headers.origin }, "ui request refused: Origin not allowed");
      return sendError(res, new UiError(403, "FORBIDDEN", `Origin "${req.headers.origin ?? ""}" is not allowed`));
    }
    if (!path.startsWith("/api/")) {
      if (method !== "GET" && method !== "HEAD") return sendError(res, new UiError(405, "METHOD_NOT_ALLOWED", `${method} ${path}: only GET`), { allow: "GET, HEAD" });
      // The page itself is public: it holds no data and asks /api/session whether to show the login.
      return serveStatic(res, path, method === "HEAD");
    }
    const viaBearer = bearerOk(req);
    let session = sessionOf(req);
    if (path === "/api/login") {
      if (method !== "POST") return sendError(res, new UiError(405, "METHOD_NOT_ALLOWED", "login: POST {token}"), { allow: "POST" });
      const body = await jsonBody(req);
      const token = (body as { token?: unknown } | null)?.token;
      if (typeof token !== "string" || token === "") throw new UiError(400, "VALIDATION", "token: required", "token");
      if (options.token === undefined || !secretsMatch(token, options.token)) {
        logger?.warn("ui login refused: wrong token");
        throw new UiError(401, "UNAUTHORIZED", "token: not the dashboard's token", "token");
      }
      session = newSession(res);
      return sendJson(res, 200, { ok: true, csrf: session.csrf, user: by });
    }
    const authed = options.token === undefined || viaBearer || session !== undefined;
    if (!authed) return sendError(res, new UiError(401, "UNAUTHORIZED", "a valid bearer token or a login is required"), { "www-authenticate": "Bearer" });
    if (path === "/api/session") {
      if (method !== "GET") return sendError(res, new UiError(405, "METHOD_NOT_ALLOWED", "session: GET"), { allow: "GET" });
      session ??= newSession(res);
      return sendJson(res, 200, { csrf: session.csrf, user: by, authRequired: options.token !== undefined, mode });
    }
    if (path === "/api/logout" && method === "POST") {
      const id = cookieOf(req, UI_SESSION_COOKIE);
      if (id !== undefined) sessions.delete(id);
      return sendJson(res, 200, { ok: true }, { "set-cookie": `${UI_SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
    }
    if (method === "GET" || method === "HEAD") return routeRead(req, res, url);
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
    const result = await routeAction(path, body);
    logger?.info({ path, by }, "ui action");
    return sendJson(res, 200, result);
  };

  const jsonBody = async (req: IncomingMessage): Promise<unknown> => {
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json") throw new UiError(415, "UNSUPPORTED_MEDIA_TYPE", `content-type: must be application/json, got "${type}"`, "content-type");
    const raw = (await readBody(req)).toString("utf8");
    if (raw.trim() === "") return {};
    try {
      return JSON.parse(raw) as unknown;
    } catch (error) {
      throw new UiError(400, "VALIDATION", `body: not valid JSON (${coerceError(error).message})`, "body");
    }
  };

  const routeRead = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const path = url.pathname;
    const parts = path.split("/").filter((p) => p !== ""); // ["api", ...]
    if (path === "/api/events") return openEvents(req, res);
    if (path === "/api/overview") return sendJson(res, 200, await overview(api));
    if (path === "/api/tasks") return sendJson(res, 200, await listTasks(api, url.searchParams));
    if (parts[1] === "tasks" && parts.length === 3) return sendJson(res, 200, await taskDetail(api, parseId(parts[2]!)));
    if (parts[1] === "goals" && parts.length === 4 && parts[3] === "graph") return sendJson(res, 200, await goalGraph(api, parseId(parts[2]!)));
    if (path === "/api/agents") return sendJson(res, 200, { agents: await options.store.agents.list({ includeInactive: url.searchParams.get("all") === "1" }) });
    if (path === "/api/personas") return sendJson(res, 200, { personas: await options.store.personas.list({ includeRetired: true }) });
    if (path === "/api/schedules") return sendJson(res, 200, { schedules: await options.store.schedules.list() });
    throw new UiError(404, "NOT_FOUND", `no such endpoint: GET ${path}`);
  };

  const routeAction = async (path: string, body: unknown): Promise<unknown> => {
    const parts = path.split("/").filter((p) => p !== "");
    if (path === "/api/tasks") return addTask(api, body);
    if (path === "/api/plans") return addPlan(api, body);
    if (parts[1] === "tasks" && parts.length === 4) {
      const action = parts[3]!;
      if (!(TASK_ACTIONS as readonly string[]).includes(action)) throw new UiError(404, "NOT_FOUND", `no such action: ${action} (${TASK_ACTIONS.join(", ")})`);
      return taskAction(api, parseId(parts[2]!), action as TaskAction, body);
    }
    throw new UiError(404, "NOT_FOUND", `no such endpoint: POST ${path}`);
  };

  const http: Server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      const e = toUiError(error);
      if (e.status >= 500) logger?.error({ err: coerceError(error) }, "ui request failed");
      sendError(res, e);
    });
  });
  http.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const why = error.code === "EADDRINUSE" ? "address in use" : error.code === "EACCES" ? "permission denied" : error.message;
      reject(new RosterError("CONFIG_INVALID", `ui: cannot listen on ${host}:${options.port} (${why})`, { cause: error, details: { field: "ui.port" } }));
    };
    http.once("error", onError);
    http.listen(options.port, host, () => {
      http.off("error", onError);
      resolve();
    });
  });
  const address = http.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${urlHost}:${address.port}/`;
  logger?.debug({ url, token: options.token !== undefined }, "ui listening");
  let closing: Promise<void> | null = null;
  return {
    url,
    host: address.address,
    port: address.port,
    close: () =>
      (closing ??= (async () => {
        for (const stop of unsubscribe) stop();
        if (poll !== null) clearInterval(poll);
        clearInterval(keepAlive);
        if (flushTimer !== null) clearTimeout(flushTimer);
        if (hinted !== null) clearTimeout(hinted);
        for (const res of clients) res.end();
        clients.clear();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
      })()),
  };
}
