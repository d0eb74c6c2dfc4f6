import { spawn, type ChildProcess } from "node:child_process";
import type { Store, TaskDetail } from "../../src/store/index.js";
import { ROSTER_BIN } from "../mcp/helpers.js";

/** The parent's environment without its ROSTER_* variables, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_")) env[key] = value;
  return { ...env, ...extra };
}

/** A `roster start` child, with everything it logged so far. */
export type RosterProcess = ChildProcess & { log(): string };

/**
 * `roster start` as a real process on `dbPath` (a SQLite file or a postgres:// URL);
 * resolves with the child once it logged "supervisor started", rejects with its
 * log's tail if it exits first. The caller kills it (or pushes it to a list its
 * afterEach kills).
 */
export function startRoster(dbPath: string, personasDir: string, options: { env?: Record<string, string>; args?: string[] } = {}): Promise<RosterProcess> {
  const child = spawn(process.execPath, [ROSTER_BIN, "start", "--db", dbPath, "--personas", personasDir, "--threads", "1", "--metrics-port", "0", ...(options.args ?? [])], {
    env: cleanEnv(options.env),
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const proc = Object.assign(child, { log: () => log });
  return new Promise((resolve, reject) => {
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      log += chunk;
      if (log.includes("supervisor started")) resolve(proc);
    });
    child.on("exit", (code) => reject(new Error(`roster start exited ${code}: ${log.slice(-2_000)}`)));
  });
}

/** The JSON lines of a roster process's log that mention `msg`, parsed. */
export function logLines(proc: RosterProcess, msg: string): Array<Record<string, unknown>> {
  return proc
    .log()
    .split("\n")
    .filter((line) => line.includes(msg))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** `roster mcp` over stdio on `dbPath`, kept open (its stdin is never closed), reaping every `reapIntervalMs`, its clock shifted by `offsetMs`. */
export function startMcpReaper(dbPath: string, offsetMs: number, reapIntervalMs = 100): ChildProcess {
  return spawn(process.execPath, [ROSTER_BIN, "mcp", "--db", dbPath, "--reap-interval-ms", String(reapIntervalMs), "--log-level", "warn"], {
    env: cleanEnv({ ROSTER_CLOCK_OFFSET_MS: String(offsetMs) }),
    stdio: ["pipe", "ignore", "ignore"],
  });
}

/** Polls until every task is completed or failed (or `timeoutMs` passes); returns them with up to 1,000 events each. */
export async function waitForTerminal(store: Store, ids: readonly number[], timeoutMs: number): Promise<TaskDetail[]> {
  const deadline = Date.now() + timeoutMs;
  const read = () => Promise.all(ids.map((taskId) => store.tasks.get({ taskId, eventLimit: 1_000 })));
  let tasks = await read();
  while (tasks.some((t) => t.status !== "completed" && t.status !== "failed") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    tasks = await read();
  }
  return tasks;
}
