/**
 * Runs one measured system in a child process of its own, so each run starts with a
 * fresh heap, its own native modules (liteque's better-sqlite3 11.9) and its own RSS.
 * The parent names a built module and an exported async function; the child imports
 * it, calls it with the JSON options and sends the JSON result back over IPC.
 */
import { fork } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface ChildCall {
  /** Absolute path of a built .js module. */
  modulePath: string;
  /** Name of an exported async function taking one JSON argument. */
  fn: string;
  args: unknown;
  /** Extra node flags, e.g. ["--cpu-prof", "--cpu-prof-dir=…"]. */
  execArgv?: string[];
  /** Kill the child and reject after this long. Default 10 minutes. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Run the child inside this network namespace (`ip netns exec`, as root): a "host" of its own. */
  netns?: string;
}

type Reply = { ok: true; result: unknown } | { ok: false; error: { message: string; stack?: string } };

const ENTRY = fileURLToPath(import.meta.url);
/** iproute2's `ip`, for children in a network namespace. */
export const IP_COMMAND = "ip";

/** Calls `fn(args)` from `modulePath` in a fresh node process and resolves with its result. */
export function runInChild<T>(call: ChildCall): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // In a namespace: fork runs `ip netns exec NS node [execArgv] ENTRY`, the IPC channel's fd inherited through both.
    const child = fork(ENTRY, ["--bench-child"], {
      ...(call.netns === undefined
        ? { execArgv: call.execArgv ?? [] }
        : { execPath: IP_COMMAND, execArgv: ["netns", "exec", call.netns, process.execPath, ...(call.execArgv ?? [])] }),
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: call.env ?? process.env,
    });
    let reply: Reply | undefined;
    // A harness that exits (Ctrl-C, crash) takes its measuring child with it.
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`bench child ${call.fn} timed out after ${call.timeoutMs ?? 600_000} ms`));
    }, call.timeoutMs ?? 600_000);
    child.on("message", (message) => {
      reply = message as Reply;
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      process.off("exit", killOnExit);
      if (reply === undefined) {
        reject(new Error(`bench child ${call.fn} exited (code ${code}, signal ${signal}) without a result`));
      } else if (reply.ok) {
        resolve(reply.result as T);
      } else {
        const error = new Error(`bench child ${call.fn}: ${reply.error.message}`);
        if (reply.error.stack !== undefined) error.stack = reply.error.stack;
        reject(error);
      }
    });
    child.send({ modulePath: call.modulePath, fn: call.fn, args: call.args });
  });
}

async function childMain(): Promise<void> {
  // The parent gone (killed, Ctrl-C): stop measuring at once.
  process.once("disconnect", () => process.exit(1));
  const call = await new Promise<ChildCall>((resolve) => process.once("message", (m) => resolve(m as ChildCall)));
  let reply: Reply;
  try {
    const mod = (await import(pathToFileURL(call.modulePath).href)) as Record<string, unknown>;
    const fn = mod[call.fn];
    if (typeof fn !== "function") throw new Error(`${call.modulePath} does not export a function ${call.fn}`);
    reply = { ok: true, result: await (fn as (args: unknown) => Promise<unknown>)(call.args) };
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    reply = { ok: false, error: { message: e.message, ...(e.stack !== undefined ? { stack: e.stack } : {}) } };
  }
  await new Promise<void>((resolve) => process.send!(reply, () => resolve()));
  // Handles a measured system leaves open (pools, sockets) must not keep the child alive.
  process.exit(0);
}

if (process.argv[2] === "--bench-child" && process.send !== undefined) {
  void childMain();
}
