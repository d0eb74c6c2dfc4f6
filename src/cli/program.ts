import { Command, CommanderError } from "commander";
import { commands } from "./commands/index.js";
import { exitCodeFor, printError } from "./output.js";
import { packageVersion } from "./package-info.js";

/**
 * The `roster` command line: commander parses, each command lives in its own file
 * under commands/ and registers itself. Exit codes: 0 ok, 1 failure, 2 usage or
 * validation error.
 *
 * Commander's own errors (unknown option, missing argument) are printed as one
 * line, `roster: USAGE: …`, like every other error; `roster <command> --help`
 * shows the usage.
 */
export function buildProgram(): Command {
  const program = new Command("roster")
    .description("A local orchestrator for AI agents: SQLite task leasing, worker threads, retries, audit, metrics, MCP.")
    .version(packageVersion(), "-V, --version", "print roster's version")
    .configureOutput({ outputError: (text, write) => write(usageLine(text)) })
    .exitOverride();
  // Subcommands created with program.command() copy these settings.
  for (const register of commands) register(program);
  return program;
}

/** "error: unknown option '--x'\n(Did you mean --y?)" → "roster: USAGE: unknown option '--x' (Did you mean --y?)" */
function usageLine(text: string): string {
  const flat = text
    .replace(/^error:\s*/, "")
    .split("\n")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .join(" ");
  return `roster: USAGE: ${flat} (see --help)\n`;
}

/**
 * A reader that went away (`roster status --watch --json | head -1`, `roster ls |
 * less` quit early) ends the command quietly, as it ends `cat`: EPIPE on stdout
 * is not an error worth a stack trace. Any other stdout failure is one line.
 */
export function onStdoutError(error: NodeJS.ErrnoException): void {
  if (error.code === "EPIPE") process.exit(0);
  printError(error);
  process.exit(1);
}

export async function runCli(argv: string[]): Promise<number> {
  if (!process.stdout.listeners("error").includes(onStdoutError)) process.stdout.on("error", onStdoutError);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help, --version and `roster help` exit 0; everything else commander
      // rejects (unknown option or command, missing argument, no command) is usage.
      return error.exitCode === 0 ? 0 : 2;
    }
    printError(error);
    return exitCodeFor(error);
  }
}
