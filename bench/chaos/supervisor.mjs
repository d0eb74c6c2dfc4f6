// One chaos supervisor: runStart (the code `roster start` runs) with the config given
// as JSON in argv[2], so the run can use short lease and reaper intervals that
// `roster start` has no flags for. argv[3] is the built dist/src folder to load (the
// runner's private copy, so a rebuild of dist/ during the run changes nothing).
// Prints "ready <agentId>" once the supervisor runs. The chaos runner kills it with
// SIGKILL (or SIGTERM first); it never stops on its own.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const src = process.argv[3] ?? new URL("../../dist/src/", import.meta.url).pathname;
const load = (file) => import(pathToFileURL(join(src, file)).href);
const [{ loadConfig }, { createLogger }, { runStart }] = await Promise.all([load("config.js"), load("logging/logger.js"), load("main.js")]);

const config = loadConfig(JSON.parse(process.argv[2]), {});
process.exitCode = await runStart(config, {
  demo: false,
  exitWhenIdle: false,
  logger: createLogger({ level: config.logLevel }),
  supervisor: { abortGraceMs: 300 },
  onReady: (ctx) => process.stdout.write(`ready ${ctx.supervisor.agentId}\n`),
});
