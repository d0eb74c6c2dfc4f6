import { Command, CommanderError } from "commander";
import { commands } from "./commands/index.js";
import { exitCodeFor, printError } from "./output.js";

/**
 * The `roster` command line: commander parses, each command lives in its own file
 * under commands/ and registers itself. Exit codes: 0 ok, 1 failure, 2 usage or
 * validation error.
 */
export function buildProgram(): Command {
  const program = new Command("roster")
    .description("A local orchestrator for AI agents: SQLite task leasing, worker threads, retries, audit, metrics, MCP.")
    .showHelpAfterError()
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not failures; commander has already printed them.
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") return 0;
      return 2;
    }
    printError(error);
    return exitCodeFor(error);
  }
}
