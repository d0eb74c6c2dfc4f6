import type { Server } from "node:http";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { Config } from "../../config.js";
import { RosterError } from "../../errors.js";
import { logLevelOption } from "../../logging/logger.js";
import { assertModulePaths, loadPersonaDir } from "../../personas/load.js";
import type { Logger } from "../../logging/logger.js";
import type { RunExtension } from "../../main.js";
import { addDbOption, addPersonasOption, configFrom, configValueLabel, parseInteger, type DbOptions, type PersonasOptions } from "../options.js";
import type { UiOptionNames } from "../../ui/guard.js";
import { uiTokenAndNames, uiUser } from "./ui.js";

interface StartOptions extends DbOptions, PersonasOptions {
  concurrency?: string;
  threads?: string;
  exitWhenIdle?: boolean;
  demo?: boolean;
  metrics: boolean;
  metricsPort?: string;
  metricsHost?: string;
  logLevel?: Config["logLevel"];
  mcpPort?: string;
  mcpHost?: string;
  mcpToken?: string;
  mcpProfile?: string;
  mcpWorkerToken?: string;
  mcpPlannerToken?: string;
  synchronous?: string;
  // The dashboard (issue 20): --ui-port, --ui-host, --ui-token.
  uiPort?: string;
  uiHost?: string;
  uiToken?: string;
}

type ConfigFlags = NonNullable<Parameters<typeof configFrom>[1]>;

/** The MCP profiles (src/mcp/context.ts MCP_PROFILES), spelled here so the start command's flag check does not load the MCP SDK. */
const MCP_PROFILE_NAMES = ["planner", "worker", "all"] as const;

/** Flags → config input; loadConfig (zod) checks ranges and lists every problem. */
export function startConfig(options: StartOptions): Config {
  const flags: ConfigFlags = {};
  if (options.concurrency !== undefined) flags.concurrency = parseInteger("--concurrency", options.concurrency, { min: 1 });
  if (options.threads !== undefined) flags.threads = parseInteger("--threads", options.threads, { min: 1 });
  if (options.logLevel !== undefined) flags.logLevel = options.logLevel;
  if (options.synchronous !== undefined) {
    const value = options.synchronous.toUpperCase();
    if (value !== "NORMAL" && value !== "FULL") {
      throw new RosterError("VALIDATION", `--synchronous: must be NORMAL or FULL, got "${options.synchronous}"`, { details: { field: "synchronous" } });
    }
    flags.synchronous = value;
  }
  if (!options.metrics && (options.metricsPort !== undefined || options.metricsHost !== undefined)) {
    throw new RosterError("VALIDATION", "--no-metrics: cannot be combined with --metrics-port or --metrics-host", { details: { field: "metrics" } });
  }
  const metrics: NonNullable<ConfigFlags["metrics"]> = {};
  if (!options.metrics) metrics.enabled = false;
  if (options.metricsPort !== undefined) metrics.port = parseInteger("--metrics-port", options.metricsPort, { min: 0, max: 65_535 });
  if (options.metricsHost !== undefined) metrics.host = options.metricsHost;
  if (Object.keys(metrics).length > 0) flags.metrics = metrics;
  const mcp: NonNullable<ConfigFlags["mcp"]> = {};
  if (options.mcpPort !== undefined) mcp.port = parseInteger("--mcp-port", options.mcpPort, { min: 0, max: 65_535 });
  if (options.mcpHost !== undefined) mcp.host = options.mcpHost;
  if (options.mcpToken !== undefined) mcp.token = options.mcpToken;
  if (options.mcpWorkerToken !== undefined) mcp.workerToken = options.mcpWorkerToken;
  if (options.mcpPlannerToken !== undefined) mcp.plannerToken = options.mcpPlannerToken;
  if (options.mcpProfile !== undefined) {
    if (!(MCP_PROFILE_NAMES as readonly string[]).includes(options.mcpProfile)) {
      throw new RosterError("VALIDATION", `--mcp-profile: must be one of ${MCP_PROFILE_NAMES.join(", ")}, got "${options.mcpProfile}"`, { details: { field: "mcp-profile" } });
    }
    mcp.profile = options.mcpProfile as (typeof MCP_PROFILE_NAMES)[number];
  }
  if (mcp.port === undefined && Object.keys(mcp).length > 0) {
    throw new RosterError(
      "VALIDATION",
      "--mcp-host and --mcp-token need --mcp-port, as do --mcp-profile, --mcp-worker-token and --mcp-planner-token (the MCP HTTP server is off without it)",
      { details: { field: "mcp-port" } },
    );
  }
  if (Object.keys(mcp).length > 0) flags.mcp = mcp;
  return configFrom(options, flags);
}

/** The dashboard's flags on start, as its messages name them (`roster ui` has its own). */
const UI_FLAGS = { port: "--ui-port", host: "--ui-host", token: "--ui-token" };

/** --ui-port/--ui-host/--ui-token, checked before anything starts, with the names their messages use; null without --ui-port. */
function uiFlags(options: StartOptions): { bind: { port: number; host?: string; token?: string }; names: UiOptionNames } | null {
  const { token, names } = uiTokenAndNames(UI_FLAGS, options.uiToken);
  if (options.uiPort === undefined) {
    if (options.uiHost !== undefined || options.uiToken !== undefined) throw new RosterError("VALIDATION", "--ui-host and --ui-token need --ui-port (the dashboard is off without it)", { details: { field: "ui-port" } });
    return null;
  }
  const port = parseInteger("--ui-port", options.uiPort, { min: 0, max: 65_535 });
  return { bind: { port, ...(options.uiHost !== undefined ? { host: options.uiHost } : {}), ...(token !== undefined ? { token } : {}) }, names };
}

/** The dashboard's flags checked (a non-loopback host needs a token), with the host it binds. */
async function checkedUi(ui: NonNullable<ReturnType<typeof uiFlags>>): Promise<{ host: string }> {
  const { checkUiOptions } = await import("../../ui/guard.js");
  return checkUiOptions(ui.bind, ui.names);
}

/** The dashboard beside the supervisor (src/ui); the supervisor's waker owns hasExternalChanges, so the dashboard takes the watch hint only. */
async function uiExtension(ui: NonNullable<ReturnType<typeof uiFlags>>["bind"], console: { logger: Logger; secrets: { add(values: string[]): void } }, listening: Server | undefined): Promise<RunExtension> {
  const { startUiServer } = await import("../../ui/server.js");
  if (ui.token !== undefined) console.secrets.add([ui.token]);
  return async (ctx) => {
    const server = await startUiServer({ store: ctx.store, ...ui, user: uiUser(undefined), externalChanges: "shared", logger: console.logger, ...(listening === undefined ? {} : { listening }) });
    console.logger.info({ url: server.url, authRequired: ui.token !== undefined }, "serving the dashboard");
    return { stop: () => server.close() };
  };
}

/**
 * `roster start`: the supervisor. Syncs personas, serves metrics (and MCP over
 * HTTP with --mcp-port), and runs tasks until SIGINT/SIGTERM, or until nothing is
 * left to do with --exit-when-idle. `--demo` seeds the demo goal into an empty
 * database; without it start never adds tasks of its own.
 */
export function register(program: Command): void {
  const command = program
    .command("start")
    .description("run the supervisor: claim ready tasks and run them on worker threads until stopped");
  addDbOption(command);
  addPersonasOption(command);
  command
    .option("--concurrency <n>", "tasks running at once across all personas (env ROSTER_CONCURRENCY, default 256)")
    .option("--threads <n>", "worker threads (env ROSTER_THREADS, default: the number of CPUs)")
    .option("--exit-when-idle", "exit 0 once no task is ready, running or waiting on a retry")
    .option("--demo", "seed the demo goal into an empty database")
    .option("--metrics-port <n>", "Prometheus /metrics port (default 9464; 0 picks a free port)")
    .option("--metrics-host <host>", "address /metrics binds (default 127.0.0.1)")
    .option("--no-metrics", "do not serve /metrics")
    .addOption(logLevelOption())
    .option("--mcp-port <n>", "also serve MCP over Streamable HTTP on this port (off by default)")
    .option("--mcp-host <host>", "address the MCP HTTP server binds (default 127.0.0.1)")
    .option("--mcp-token <token>", "bearer token MCP HTTP clients must send (env ROSTER_MCP_TOKEN)")
    .option("--mcp-profile <profile>", "MCP tools served over HTTP: planner, worker or all (default all; /mcp/worker, /mcp/planner serve one)")
    .option("--mcp-worker-token <token>", "a token that opens the worker tools only (env ROSTER_MCP_WORKER_TOKEN)")
    .option("--mcp-planner-token <token>", "a token that opens the planner tools only (env ROSTER_MCP_PLANNER_TOKEN)")
    .option("--synchronous <mode>", "SQLite synchronous: NORMAL or FULL (env ROSTER_SYNCHRONOUS, default NORMAL)");
  command
    .option("--ui-port <n>", "also serve the web dashboard on this port (off by default; 0 picks a free port)")
    .option("--ui-host <host>", "address the dashboard binds (default 127.0.0.1; any other needs --ui-token)")
    .option("--ui-token <token>", "token the dashboard asks for (env ROSTER_UI_TOKEN)");
  command.action(async (options: StartOptions) => {
    const config = startConfig(options);
    const ui = uiFlags(options);
    // runStart opens (creates) the database before it reads the persona files;
    // checking them first means a bad file or folder leaves nothing written.
    assertModulePaths(loadPersonaDir(config.personasDir, configValueLabel(config, "personasDir")), { personasDir: resolve(config.personasDir), allowAbsoluteModules: config.allowAbsoluteModules });
    // Loaded here, not at the top: the supervisor, prom-client and the MCP SDK
    // are more than the quick read commands should pay for at every start-up.
    const [{ runStart }, { bindPorts, startServices }, { demoReport }] = await Promise.all([
      import("../../main.js"),
      import("../start-services.js"),
      import("../demo-report.js"),
    ]);
    const uiChecked = ui === null ? null : await checkedUi(ui);
    // Before the database is opened: a port in use is refused with nothing written (src/http-listen.ts).
    const bound = await bindPorts(config, uiChecked === null ? null : { host: uiChecked.host, port: ui!.bind.port });
    try {
      const services = startServices(config, bound);
      if (ui !== null) services.extensions.splice(-1, 0, await uiExtension(ui.bind, services.console, bound.ui));
      // Before the live status, which stops first: the summary line lands above its final block.
      if (options.demo === true) services.extensions.unshift(demoReport({ logger: services.console.logger, dbPath: config.dbPath }));
      const code = await runStart(config, {
        demo: options.demo === true,
        exitWhenIdle: options.exitWhenIdle === true,
        logger: services.console.logger,
        extensions: services.extensions,
        ...services.storeHooks,
      });
      process.exitCode = code;
    } finally {
      bound.close();
    }
  });
}
