import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe } from "vitest";
import { tempDir } from "../agent/helpers.js";
import { GEMINI_MODEL, OPENAI_MODEL, offlineEnv, startModelServer, startTrapProxy, type ModelServer, type Scenario, type TrapProxy } from "./model-server.js";

/**
 * What the tests of the real agent CLIs share: where the pinned CLIs and the built roster
 * are, the describe that runs only where the CLIs are installed (or under CI=true, where a
 * missing CLI fails rather than skips), and the world a file runs in: the scripted model
 * server, the trap proxy every proxy variable points at, and a temp folder.
 */
const HERE = dirname(fileURLToPath(import.meta.url));
/** The pinned CLIs (test/agent-cli/package.json). */
export const CLI_BIN = join(HERE, "node_modules", ".bin");
export const ROSTER_BIN = resolve(HERE, "../../dist/src/cli/bin.js");
/** The variable the personas name as apiKeyEnv; the tests set it to a scripted key. */
export const KEY_VAR = "ROSTER_TEST_MODEL_KEY";

/** `describe` when these CLIs are installed or CI=true, else `describe.skip`. */
export function describeWithClis(names: readonly string[]): typeof describe | typeof describe.skip {
  const installed = names.every((name) => existsSync(join(CLI_BIN, name)));
  return installed || process.env.CI === "true" ? describe : describe.skip;
}

export interface World {
  server: ModelServer;
  trap: TrapProxy;
  dir: { path: string; cleanup: () => void };
}

/** The scripted server (answering `scenario` until a test sets another), the trap proxy and a temp folder named after `prefix`. */
export async function openWorld(scenario: Scenario, prefix: string): Promise<World> {
  const server = await startModelServer(scenario);
  const trap = await startTrapProxy();
  return { server, trap, dir: tempDir(prefix) };
}

export async function closeWorld(world: World): Promise<void> {
  await world.server.close();
  await world.trap.close();
  world.dir.cleanup();
}

/** The environment roster and the CLIs get: offline (every proxy variable at the trap) and the scripted key in KEY_VAR. */
export function scriptedEnv(trap: TrapProxy): NodeJS.ProcessEnv {
  return offlineEnv(trap, { [KEY_VAR]: "sk-scripted-test-key" });
}

/** Runs the built `roster` with `args` in the world's folder, in scriptedEnv; its exit code (1 when killed) and output. */
export function runRoster(world: Pick<World, "trap" | "dir">, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [ROSTER_BIN, ...args], { cwd: world.dir.path, env: scriptedEnv(world.trap), encoding: "utf8", timeout: timeoutMs }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

/** A persona's `adapter:` lines for the pinned `cli` pointed at the scripted server at `serverUrl` (Codex at its /v1), in a fresh home. */
export function agentAdapterLines(cli: string, serverUrl: string): string[] {
  return [
    "adapter:",
    "  kind: agent",
    `  profile: ${cli}`,
    `  command: ${JSON.stringify(join(CLI_BIN, cli))}`,
    `  baseUrl: ${JSON.stringify(cli === "codex" ? `${serverUrl}/v1` : serverUrl)}`,
    `  apiKeyEnv: ${KEY_VAR}`,
    "  home: fresh",
    ...(cli === "codex" ? [`  model: ${OPENAI_MODEL}`] : cli === "gemini" ? [`  model: ${GEMINI_MODEL}`] : []),
  ];
}
