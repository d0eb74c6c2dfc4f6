// One chaos supervisor: runStart (the code `roster start` runs) with the config given
// as JSON in argv[2], so the run can use short lease and reaper intervals that
// `roster start` has no flags for. argv[3] is the built dist/src folder to load (the
// runner's private copy, so a rebuild of dist/ during the run changes nothing).
// Prints "ready <agentId> <clock offset ms>" once the supervisor runs. The chaos
// runner kills it with SIGKILL (or SIGTERM first); it never stops on its own.
//
// ROSTER_CLOCK_OFFSET_MS in the environment skews this process's clock: handed to
// loadConfig, and when the config does not know it (no clock offset field), this
// script injects a clock of its own that is that far off. The ready line says
// the offset measured in the running supervisor, whichever way it came.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const src = process.argv[3] ?? new URL("../../dist/src/", import.meta.url).pathname;
const load = (file) => import(pathToFileURL(join(src, file)).href);
const [{ loadConfig }, { createLogger }, { runStart }] = await Promise.all([load("config.js"), load("logging/logger.js"), load("main.js")]);

const raw = process.env.ROSTER_CLOCK_OFFSET_MS;
const offsetMs = raw === undefined || raw === "" ? 0 : Number(raw);
const config = loadConfig(JSON.parse(process.argv[2]), raw === undefined ? {} : { ROSTER_CLOCK_OFFSET_MS: raw });
const configKnowsOffset = Object.keys(config).some((key) => /clock.*offset/i.test(key));
const clock = offsetMs !== 0 && !configKnowsOffset ? { now: () => Date.now() + offsetMs } : undefined;
process.exitCode = await runStart(config, {
  demo: false,
  exitWhenIdle: false,
  logger: createLogger({ level: config.logLevel }),
  supervisor: { abortGraceMs: 300 },
  ...(clock === undefined ? {} : { clock }),
  onReady: (ctx) => process.stdout.write(`ready ${ctx.supervisor.agentId} ${ctx.supervisor.clock.now() - Date.now()}\n`),
});
