/**
 * Binding roster's HTTP servers (metrics, MCP over HTTP, the dashboard), in one place. A
 * server that cannot bind is bad configuration: CONFIG_INVALID naming the server, the
 * address and what to change. `roster start` binds every port it was asked for before it
 * opens the database (src/cli/commands/start.ts), so a port in use or an address that is not
 * this machine's is refused with nothing written and no task run; each server then takes
 * its bound socket (`listening`) instead of binding its own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

import { RosterError } from "./errors.js";

export interface ListenTarget {
  /** The server, as messages name it: "metrics", "mcp", "ui". */
  what: string;
  host: string;
  port: number;
  /** The flags that change it, for the message ("set --metrics-port or --no-metrics"). */
  hint?: string;
}

/** Answers requests that come while roster is still starting (before serveHttp): 503, try again shortly. */
function starting(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "retry-after": "1", connection: "close" });
  res.end("roster is starting\n");
}

/** An HTTP server listening on the target, answering 503 until serveHttp gives it its handler; CONFIG_INVALID if it cannot bind. */
export function listenHttp(target: ListenTarget): Promise<Server> {
  const server = createServer(starting);
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off("listening", onListening);
      const why = error.code === "EADDRINUSE" ? "address in use" : error.code === "EACCES" ? "permission denied" : error.code === "EADDRNOTAVAIL" ? "not an address of this machine" : error.message;
      reject(
        new RosterError("CONFIG_INVALID", `${target.what}: cannot listen on ${target.host}:${target.port} (${why})${target.hint === undefined ? "" : `; ${target.hint}`}`, {
          cause: error,
          details: { field: `${target.what}.port` },
        }),
      );
    };
    const onListening = (): void => {
      server.off("error", onError);
      resolve(server);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(target.port, target.host);
  });
}

/** The server bound already (`listening`), or one bound now; `handler` answers its requests. */
export async function serveHttp(
  listening: Server | undefined,
  target: ListenTarget,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Server> {
  const server = listening ?? (await listenHttp(target));
  server.off("request", starting);
  server.on("request", handler);
  return server;
}
