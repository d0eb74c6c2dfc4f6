import { resolve } from "node:path";
import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { configFromEnv, type Config } from "../../config.js";
import { createLogger, logLevelOption } from "../../logging/logger.js";
import { logClockOffset } from "../../logging/store-clock.js";
import { MCP_PROFILES, McpLeaseReaper, createMcpContext, serveMcpStdio, type McpProfile } from "../../mcp/index.js";
import { RosterError } from "../../errors.js";
import { loadPersonaDir, toPersonaUpsert } from "../../personas/load.js";
import { openStoreWaiting } from "../../store/index.js";
import { TIMER_MS_MAX } from "../../timers.js";
import { addDbOption, configFrom, configValueLabel, parseInteger, type DbOptions, type PersonasOptions } from "../options.js";

interface McpOptions extends DbOptions, PersonasOptions {
  profile: string;
  reapIntervalMs?: string;
  reaper: boolean;
  logLevel?: Config["logLevel"];
}

/**
 * `roster mcp`: an MCP server over stdio for one agent CLI (Claude Code, Codex …),
 * on the same database as the supervisor. stdout carries JSON-RPC only; logs go to
 * stderr. Personas are synced only from a folder the user named (--personas or
 * ROSTER_PERSONAS), else served from the database as they are: an MCP client
 * starts this server in a folder of its choosing, and a ./personas that happens
 * to be there (the checkout's demo personas …) must not overwrite the user's
 * personas in their database. Unless --no-reaper, it
 * also returns expired leases to the queue, so external agents work without a
 * supervisor. Runs until the client closes stdin, or SIGINT/SIGTERM.
 */
export function register(program: Command): void {
  const command = program.command("mcp").description("serve roster to an MCP client (an agent CLI) over stdio");
  addDbOption(command);
  command.option("--personas <dir>", "sync the personas from this folder first (env ROSTER_PERSONAS; without either, the database's personas are served as they are)");
  command
    .option("--profile <profile>", "tools to offer: planner, worker or all", "all")
    .option("--reap-interval-ms <ms>", "how often to return expired leases to the queue (default: config reapIntervalMs, 5000)")
    .option("--no-reaper", "do not reap expired leases (a supervisor does it)")
    .addOption(logLevelOption());
  command.action(async (options: McpOptions) => {
    if (!(MCP_PROFILES as readonly string[]).includes(options.profile)) {
      throw new RosterError("VALIDATION", `--profile: must be one of ${MCP_PROFILES.join(", ")}, got "${options.profile}"`, { details: { field: "profile" } });
    }
    const profile = options.profile as McpProfile;
    const config = configFrom(options, options.logLevel !== undefined ? { logLevel: options.logLevel } : {});
    const reapIntervalMs =
      options.reapIntervalMs === undefined ? config.reapIntervalMs : parseInteger("--reap-interval-ms", options.reapIntervalMs, { min: 10, max: TIMER_MS_MAX });
    // Persona files are checked before the database is opened: a bad one writes nothing.
    const explicit = options.personas !== undefined || configFromEnv().personasDir !== undefined;
    const syncDir = explicit ? config.personasDir : null;
    const personas = syncDir === null ? null : loadPersonaDir(syncDir, configValueLabel(config, "personasDir"));
    const logger = createLogger({ level: config.logLevel, name: "roster-mcp" });
    const store = await openStoreWaiting(
      { path: config.dbPath, synchronous: config.synchronous, busyTimeoutMs: config.busyTimeoutMs, maxPayloadBytes: config.maxPayloadBytes },
      { logger },
    );
    logClockOffset(store, logger);
    const clock = systemClock;
    const reaper = options.reaper ? new McpLeaseReaper({ store, clock, logger, intervalMs: reapIntervalMs }) : null;
    const context = createMcpContext({ store, clock, logger, pollIntervalMs: config.pollIntervalMs });
    const onSignal = (): void => {
      // Asked to stop: the session's last writes are not retried while the database is away.
      context.stopping.abort();
      void session?.close();
    };
    let session: Awaited<ReturnType<typeof serveMcpStdio>> | null = null;
    try {
      if (personas !== null && syncDir !== null) {
        await store.personas.sync({ personas: personas.map(toPersonaUpsert), now: clock.now(), sourceDir: resolve(syncDir) });
      }
      if (reaper !== null) {
        await reaper.tick();
        reaper.start();
      }
      session = await serveMcpStdio({ context, profile });
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      logger.info({ db: config.dbPath, profile, reaper: reaper !== null }, "roster mcp serving on stdio");
      await session.closed;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      await reaper?.stop();
      context.changes.stop();
      await store.close();
      logger.info("roster mcp stopped");
    }
  });
}
