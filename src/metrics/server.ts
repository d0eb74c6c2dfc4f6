import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { RosterError, coerceError } from "../errors.js";
import { serveHttp } from "../http-listen.js";
import type { HealthCheck } from "./health.js";
import type { RosterMetrics } from "./metrics.js";

export interface MetricsServerOptions {
  metrics: Pick<RosterMetrics, "scrape" | "contentType">;
  /** Default 127.0.0.1: metrics stay on the machine unless told otherwise. */
  host?: string;
  /** 0 picks a free port (tests). */
  port: number;
  health: HealthCheck;
  /** A server already bound to host:port (src/http-listen.ts), as `roster start` binds before it writes anything. */
  listening?: Server;
  /** Told about a scrape that failed (the store closed, a query error); the scrape answers 500. */
  onError?: (error: Error) => void;
}

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A node:http server with two routes: `GET /metrics` (the Prometheus text
 * exposition) and `GET /healthz` (200 while the loop ticks, 503 when it has
 * stalled, with a small JSON body saying why). Anything else is 404; other
 * methods on those paths are 405.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? "127.0.0.1";
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    throw new RosterError("CONFIG_INVALID", `metrics.port: must be an integer from 0 to 65535, got ${String(options.port)}`);
  }
  const server = await serveHttp(options.listening, { what: "metrics", host, port: options.port, hint: "set --metrics-port or --no-metrics" }, (req, res) => {
    handle(req, res, options).catch((error: unknown) => {
      const e = coerceError(error);
      options.onError?.(e);
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", `scrape failed: ${e.message}\n`);
      else res.destroy(e);
    });
  });
  // A scraper holding a keep-alive connection must not keep shutdown waiting.
  server.keepAliveTimeout = 5_000;
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    host,
    port,
    url: `http://${urlHost}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: MetricsServerOptions): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (path !== "/metrics" && path !== "/healthz") {
    send(res, 404, "text/plain; charset=utf-8", "not found: try /metrics or /healthz\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
    return;
  }
  if (path === "/healthz") {
    const report = options.health.check();
    send(res, report.ok ? 200 : 503, "application/json; charset=utf-8", `${JSON.stringify(report)}\n`, req.method === "HEAD");
    return;
  }
  const body = await options.metrics.scrape();
  send(res, 200, options.metrics.contentType, body, req.method === "HEAD");
}

function send(res: ServerResponse, status: number, contentType: string, body: string, headOnly = false): void {
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store" });
  res.end(headOnly ? undefined : body);
}
