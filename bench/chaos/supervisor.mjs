// One chaos supervisor: runStart (the code `roster start` runs) with the config given
// as JSON in argv[2], so the run can use short lease and reaper intervals that
// `roster start` has no flags for. Prints "ready <agentId>" once the supervisor runs.
// The chaos runner kills it with SIGKILL; it never stops on its own.
import { loadConfig } from "../../dist/src/config.js";
import { createLogger } from "../../dist/src/logging/logger.js";
import { runStart } from "../../dist/src/main.js";

const config = loadConfig(JSON.parse(process.argv[2]), {});
process.exitCode = await runStart(config, {
  demo: false,
  exitWhenIdle: false,
  logger: createLogger({ level: config.logLevel }),
  supervisor: { abortGraceMs: 300 },
  onReady: (ctx) => process.stdout.write(`ready ${ctx.supervisor.agentId}\n`),
});
