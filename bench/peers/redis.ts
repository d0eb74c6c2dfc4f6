/**
 * A private redis-server for BullMQ: Debian's /usr/bin/redis-server (or REDIS_SERVER),
 * on 127.0.0.1 and a free port, no persistence, in a temporary folder; stopped by the
 * benchmark that started it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
  port: number;
  version: string;
  stop(): Promise<void>;
}

export function findRedisServer(): string | null {
  const candidates = [process.env.REDIS_SERVER, "/usr/bin/redis-server", "/usr/local/bin/redis-server"];
  for (const c of candidates) if (c !== undefined && c !== "" && existsSync(c)) return c;
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Sends one inline command and resolves with the first reply line. */
function ask(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let data = "";
    socket.once("error", reject);
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8");
      const headerEnd = data.indexOf("\r\n");
      if (headerEnd < 0) return;
      // A bulk reply ("$<len>\r\n<bytes>\r\n") is complete once all its bytes are in.
      const bulk = data.startsWith("$") ? Number(data.slice(1, headerEnd)) : -1;
      if (bulk < 0 || Buffer.byteLength(data) >= headerEnd + 2 + bulk + 2) {
        socket.destroy();
        resolve(data);
      }
    });
    socket.on("connect", () => socket.write(`${command}\r\n`));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const bin = findRedisServer();
  if (bin === null) throw new Error("redis-server not found (looked at $REDIS_SERVER, /usr/bin, /usr/local/bin); install Debian's redis-server");
  const dir = mkdtempSync(join(tmpdir(), "roster-bench-redis-"));
  const port = await freePort();
  const child: ChildProcess = spawn(
    bin,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes", "--loglevel", "warning"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // If the harness dies (Ctrl-C, a crash), the server must not outlive it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited at start (code ${child.exitCode}): ${stderr.trim()}`);
    try {
      if ((await ask(port, "PING")).startsWith("+PONG")) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server did not answer on 127.0.0.1:${port} within 10 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const info = await ask(port, "INFO server");
  const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? "unknown";
  return {
    port,
    version,
    async stop() {
      process.off("exit", killOnExit);
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Empties the server between runs. */
export async function flushRedis(port: number): Promise<void> {
  await ask(port, "FLUSHALL");
}
