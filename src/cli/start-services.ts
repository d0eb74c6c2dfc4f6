/**
 * What `roster start` runs beside the supervisor, as runStart extensions
 * (src/main.ts): secret scrubbing for persona env values, the Prometheus
 * /metrics and /healthz server, MCP over Streamable HTTP, and the live status on
 * stderr. Each starts once the supervisor runs and stops, in reverse order, after
 * it has stopped. This module pulls in prom-client and the MCP SDK, so the start
 * command loads it lazily; the quick read commands never do.
 */
import type { Config } from "../config.js";
import type { RunExtension, RunStartOptions } from "../main.js";
import { personaSecretValues } from "../logging/redact.js";
import { createMetricsService } from "../metrics/index.js";
import { startMcpHttp } from "../mcp/index.js";
import { createStartConsole, type StartConsole } from "../progress/index.js";

export interface StartServices {
  console: StartConsole;
  extensions: RunExtension[];
  /** For runStart: the store's transaction hook and the open-store hook (metrics). */
  storeHooks: Pick<RunStartOptions, "onTransaction" | "onStoreOpen">;
}

export function startServices(config: Config): StartServices {
  const console = createStartConsole({ level: config.logLevel });
  const { logger, secrets } = console;
  for (const token of [config.mcp.token, config.mcp.workerToken, config.mcp.plannerToken]) if (token !== undefined) secrets.add([token]);
  const extensions: RunExtension[] = [];

  extensions.push((ctx) => {
    secrets.add(personaSecretValues(ctx.personas));
  });

  // Created before the store opens: it hooks transactions and must see the store's first events.
  const metrics = config.metrics.enabled ? createMetricsService(config, { logger }) : null;
  if (metrics !== null) extensions.push(metrics.extension);

  if (config.mcp.port !== undefined) {
    const port = config.mcp.port;
    extensions.push(async (ctx) => {
      const { token, profile, workerToken, plannerToken } = config.mcp;
      const tokens = [...(workerToken === undefined ? [] : [{ token: workerToken, profile: "worker" as const }]), ...(plannerToken === undefined ? [] : [{ token: plannerToken, profile: "planner" as const }])];
      const server = await startMcpHttp({ store: ctx.store, host: config.mcp.host, port, token, tokens, ...(profile !== undefined ? { profile } : {}), logger });
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
