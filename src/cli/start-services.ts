/**
 * What `roster start` runs beside the supervisor, as runStart extensions
 * (src/main.ts): secret scrubbing for persona env values, the Prometheus
 * /metrics and /healthz server, MCP over Streamable HTTP, and the live status on
 * stderr. Each starts once the supervisor runs and stops, in reverse order, after
 * it has stopped. This module pulls in prom-client and the MCP SDK, so the start
 * command loads it lazily; the quick read commands never do.
 */
import type { Server } from "node:http";
import type { Config } from "../config.js";
import { listenHttp } from "../http-listen.js";
import type { RunExtension, RunStartOptions } from "../main.js";
import { personaSecretValues } from "../logging/redact.js";
import { createMetricsService } from "../metrics/index.js";
import { checkMcpBind, startMcpHttp } from "../mcp/index.js";
import { createStartConsole, type StartConsole } from "../progress/index.js";

export interface StartServices {
  console: StartConsole;
  extensions: RunExtension[];
  /** For runStart: the store's transaction hook and the open-store hook (metrics). */
  storeHooks: Pick<RunStartOptions, "onTransaction" | "onStoreOpen">;
}

/** The servers `roster start` was asked for, bound (src/http-listen.ts); each extension takes its own. */
export interface BoundPorts {
  metrics?: Server;
  mcp?: Server;
  ui?: Server;
  /** Closes every one still listening (those no extension took, after a failed start). */
  close(): void;
}

/**
 * Binds every port `roster start` serves on, before it opens the database: a port in use or
 * an address that is not this machine's is refused (CONFIG_INVALID, exit 2) with nothing
 * written and no task run, not found once the supervisor is already running tasks.
 */
export async function bindPorts(config: Config, ui: { host: string; port: number } | null): Promise<BoundPorts> {
  if (config.mcp.port !== undefined) {
    const { host, token, workerToken, plannerToken } = config.mcp;
    checkMcpBind({ host, token, tokens: [workerToken, plannerToken].flatMap((t) => (t === undefined ? [] : [{ token: t }])) });
  }
  const bound: BoundPorts = {
    close() {
      for (const server of [bound.metrics, bound.mcp, bound.ui]) if (server?.listening === true) server.close();
    },
  };
  try {
    if (config.metrics.enabled) bound.metrics = await listenHttp({ what: "metrics", host: config.metrics.host, port: config.metrics.port, hint: "set --metrics-port or --no-metrics" });
    if (config.mcp.port !== undefined) bound.mcp = await listenHttp({ what: "mcp", host: config.mcp.host, port: config.mcp.port, hint: "set --mcp-port" });
    if (ui !== null) bound.ui = await listenHttp({ what: "ui", host: ui.host, port: ui.port, hint: "set --ui-port" });
  } catch (error) {
    bound.close();
    throw error;
  }
  return bound;
}

export function startServices(config: Config, bound?: BoundPorts): StartServices {
  const console = createStartConsole({ level: config.logLevel });
  const { logger, secrets } = console;
  for (const token of [config.mcp.token, config.mcp.workerToken, config.mcp.plannerToken]) if (token !== undefined) secrets.add([token]);
  const extensions: RunExtension[] = [];

  extensions.push((ctx) => {
    secrets.add(personaSecretValues(ctx.personas));
  });

  // Created before the store opens: it hooks transactions and must see the store's first events.
  const metrics = config.metrics.enabled ? createMetricsService(config, { logger, ...(bound?.metrics === undefined ? {} : { listening: bound.metrics }) }) : null;
  if (metrics !== null) extensions.push(metrics.extension);

  if (config.mcp.port !== undefined) {
    const port = config.mcp.port;
    extensions.push(async (ctx) => {
      const { token, profile, workerToken, plannerToken } = config.mcp;
      const tokens = [...(workerToken === undefined ? [] : [{ token: workerToken, profile: "worker" as const }]), ...(plannerToken === undefined ? [] : [{ token: plannerToken, profile: "planner" as const }])];
      const server = await startMcpHttp({
        store: ctx.store,
        host: config.mcp.host,
        port,
        token,
        tokens,
        ...(profile !== undefined ? { profile } : {}),
        ...(bound?.mcp === undefined ? {} : { listening: bound.mcp }),
        logger,
      });
      logger.info({ url: server.url, profile: profile ?? "all", authRequired: token !== undefined || tokens.length > 0 }, "serving MCP over Streamable HTTP");
      return { stop: () => server.close() };
    });
  }

  // Last, so it stops first and its final summary shows the state the run ended in.
  extensions.push((ctx) => {
    console.startLive(ctx.store, ctx.supervisor);
    return { stop: () => console.stopLive() };
  });

  return { console, extensions, storeHooks: metrics === null ? {} : { onTransaction: metrics.onTransaction, onStoreOpen: metrics.onStoreOpen } };
}
