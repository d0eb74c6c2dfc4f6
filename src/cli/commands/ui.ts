import { userInfo } from "node:os";
import type { Command } from "commander";
import type { Config } from "../../config.js";
import { RosterError } from "../../errors.js";
import { createLogger, logLevelOption } from "../../logging/logger.js";
import { openStore } from "../../store/index.js";
import type { UiOptionNames } from "../../ui/guard.js";
import { addDbOption, assertDatabaseThere, configFrom, parseInteger, type DbOptions } from "../options.js";
import { write } from "../format.js";

interface UiOptions extends DbOptions {
  port: string;
  host?: string;
  token?: string;
  user?: string;
  allowHost?: string[];
  logLevel?: Config["logLevel"];
}

export const UI_PORT_DEFAULT = 4280;

/** The variable the dashboard's token may come from (both commands). */
export const UI_TOKEN_ENV = "ROSTER_UI_TOKEN";

/**
 * The dashboard's token (its flag, else ROSTER_UI_TOKEN) and the names the bind
 * checks (src/ui/guard.ts) give in their messages: each command's own flags
 * (`roster ui` has --host and --token, `roster start` --ui-host and --ui-token),
 * and the variable when the token came from there.
 */
export function uiTokenAndNames(flags: { port: string; host: string; token: string }, given: string | undefined): { token: string | undefined; names: UiOptionNames } {
  const fromEnv = given === undefined ? process.env[UI_TOKEN_ENV] || undefined : undefined;
  return {
    token: given ?? fromEnv,
    names: { port: flags.port, host: flags.host, token: fromEnv === undefined ? flags.token : UI_TOKEN_ENV, tokenFrom: `${flags.token} or ${UI_TOKEN_ENV}` },
  };
}

/** The actor actions are recorded as: --user, else the login name of the process. */
export function uiUser(explicit: string | undefined): string {
  if (explicit !== undefined) {
    if (!/^[\w.@-]{1,64}$/.test(explicit)) throw new RosterError("VALIDATION", `--user: letters, digits, . _ @ - only, at most 64, got "${explicit}"`, { details: { field: "user" } });
    return explicit;
  }
  try {
    return userInfo().username || "dashboard";
  } catch {
    return "dashboard";
  }
}

/**
 * `roster ui`: the web dashboard (src/ui) over a database, without a supervisor.
 * 127.0.0.1 by default; another --host needs --token (or ROSTER_UI_TOKEN). Runs
 * until SIGINT/SIGTERM.
 */
export function register(program: Command): void {
  const command = program.command("ui").description("serve the web dashboard over a database (127.0.0.1 unless --host)");
  addDbOption(command);
  command
    .option("--port <n>", `port (default ${UI_PORT_DEFAULT}; 0 picks a free port)`, String(UI_PORT_DEFAULT))
    .option("--host <host>", "address to bind (default 127.0.0.1; any other needs --token)")
    .option("--token <token>", "bearer token or login the dashboard asks for (env ROSTER_UI_TOKEN)")
    .option("--user <name>", "name actions are recorded under in the audit trail, as ui:<name> (default: your login name)")
    .option("--allow-host <name...>", "extra Host names to accept (behind a proxy or a DNS name)")
    .addOption(logLevelOption());
  command.action(async (options: UiOptions) => {
    const config = configFrom(options, options.logLevel !== undefined ? { logLevel: options.logLevel } : {});
    const port = parseInteger("--port", options.port, { min: 0, max: 65_535 });
    const { token, names } = uiTokenAndNames({ port: "--port", host: "--host", token: "--token" }, options.token);
    const user = uiUser(options.user);
    const [{ startUiServer }, { checkUiOptions }] = await Promise.all([import("../../ui/server.js"), import("../../ui/guard.js")]);
    checkUiOptions({ port, token, ...(options.host !== undefined ? { host: options.host } : {}) }, names);
    assertDatabaseThere(config);
    const logger = createLogger({ level: config.logLevel, name: "roster-ui" });
    const store = await openStore({ path: config.dbPath, synchronous: config.synchronous, busyTimeoutMs: config.busyTimeoutMs, maxPayloadBytes: config.maxPayloadBytes });
    let server: Awaited<ReturnType<typeof startUiServer>> | null = null;
    try {
      server = await startUiServer({
        store,
        port,
        token,
        user,
        logger,
        externalChanges: "own",
        ...(options.host !== undefined ? { host: options.host } : {}),
        ...(options.allowHost !== undefined ? { allowedHosts: options.allowHost } : {}),
      });
      write(`roster ui: serving ${server.url}${token !== undefined ? " (token required)" : ""}; Ctrl-C stops`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
    } finally {
      await server?.close();
      await store.close();
    }
  });
}
