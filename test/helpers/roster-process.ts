import { spawn, type ChildProcess } from "node:child_process";
import { ROSTER_BIN } from "../mcp/helpers.js";

/** The parent's environment without its ROSTER_* variables, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_")) env[key] = value;
  return { ...env, ...extra };
}

/**
 * `roster start` as a real process on `dbPath`; resolves with the child once it
 * logged "supervisor started", rejects with its log's tail if it exits first. The
 * caller kills it (or pushes it to a list its afterEach kills).
 */
export function startRoster(dbPath: string, personasDir: string, options: { env?: Record<string, string>; args?: string[] } = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [ROSTER_BIN, "start", "--db", dbPath, "--personas", personasDir, "--threads", "1", "--metrics-port", "0", ...(options.args ?? [])], {
    env: cleanEnv(options.env),
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let log = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      log += chunk;
      if (log.includes("supervisor started")) resolve(child);
    });
    child.on("exit", (code) => reject(new Error(`roster start exited ${code}: ${log.slice(-2_000)}`)));
  });
}
