import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import type { TaskRecord } from "../../src/store/index.js";
import { BIN } from "../cli/helpers.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { silentLogger } from "../../src/logging/logger.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { Supervisor } from "../../src/supervisor/supervisor.js";
import { FIXTURES, finished, harness, writePersonas, type Harness, type TestPersona } from "../supervisor/helpers.js";

/**
 * Security (issue 7, part 6): what is not already proven elsewhere. Proven
 * elsewhere, and left there:
 * - MCP over HTTP binds 127.0.0.1 by default: test/mcp/http.test.ts "binds 127.0.0.1 by default";
 *   through `roster start`, test/mcp/start-http.test.ts (its URL is 127.0.0.1).
 * - /metrics binds 127.0.0.1 by default: test/metrics/server.test.ts "listens on 127.0.0.1 by
 *   default"; through `roster start`, test/metrics/start-cli.test.ts (its URL is 127.0.0.1).
 *   Here: neither port answers on the machine's other addresses.
 * - the MCP token is required when set: test/mcp/http.test.ts "answers 401 to a client without
 *   the token, and to one with a wrong token"; test/mcp/start-http.test.ts through `roster start`.
 * - enqueue past the payload limit: test/store/conformance/bad-input.ts ("a payload over the size
 *   limit") and test/cli/bad-input.test.ts (ROSTER_MAX_PAYLOAD_BYTES); an MCP complete_task
 *   result past it: test/mcp/validation.test.ts.
 * - logs never contain secrets: test/logging/logger.test.ts (persona env values, by key and by
 *   value, the MCP token) and test/metrics/start-cli.test.ts "never logs a persona's shell adapter
 *   env secret, even at trace level and when the agent prints it"; test/mcp/start-http.test.ts
 *   checks the token is not logged.
 */

let h: Harness | null = null;
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  await h?.close();
  h = null;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };

/** Runs one task of `persona` through the real supervisor and returns it once settled. */
async function runOne(h: Harness, persona: string, payload: unknown = null): Promise<TaskRecord> {
  const done = finished(h.supervisor.events, 1);
  const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona, title: `one ${persona}`, payload: payload as never }], now: Date.now() });
  if (!h.supervisor.isRunning) await h.supervisor.start();
  const [run] = await done;
  expect(run!.taskId).toBe(ids[0]);
  return h.store.tasks.get({ taskId: ids[0]! });
}

describe("security: listening addresses", () => {
  it("roster start serves /metrics and MCP over HTTP on 127.0.0.1 only: neither port answers on the machine's other addresses", async () => {
    const temp = makeTempDir("roster-sec-");
    cleanups.push(() => temp.cleanup());
    mkdirSync(temp.path("personas"));
    const child: ChildProcess = spawn(
      process.execPath,
      [BIN, "start", "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "--metrics-port", "0", "--mcp-port", "0", "--log-level", "info"],
      { cwd: temp.dir, env: { ...process.env, ROSTER_DB: "", ROSTER_LOG_LEVEL: "", ROSTER_MCP_TOKEN: "" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
    });
    // Both servers log their URL once listening; read them as the lines arrive.
    const urls = await new Promise<{ metrics: string; mcp: string }>((resolve, reject) => {
      let stderr = "";
      const found: { metrics?: string; mcp?: string } = {};
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
        for (const line of stderr.split("\n")) {
          if (!line.startsWith("{")) continue;
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === "serving metrics") found.metrics = entry.url;
          if (entry.msg === "serving MCP over Streamable HTTP") found.mcp = entry.url;
        }
        if (found.metrics !== undefined && found.mcp !== undefined) resolve(found as { metrics: string; mcp: string });
      });
      child.once("exit", (code) => reject(new Error(`roster start exited ${code} before serving:\n${stderr}`)));
    });
    const metrics = new URL(urls.metrics);
    const mcp = new URL(urls.mcp);
    expect(metrics.hostname).toBe("127.0.0.1");
    expect(mcp.hostname).toBe("127.0.0.1");

    const reach = (host: string, port: number) =>
      new Promise<string>((resolve) => {
        const socket = connect({ host, port });
        socket.setTimeout(2_000, () => {
          socket.destroy();
          resolve("timeout");
        });
        socket.once("connect", () => {
          socket.destroy();
          resolve("connected");
        });
        socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
      });
    expect(await reach("127.0.0.1", Number(metrics.port))).toBe("connected");
    expect(await reach("127.0.0.1", Number(mcp.port))).toBe("connected");
    // Every other address of this machine (this VM has one IPv4 and two IPv6 ones) refuses both ports.
    const others = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && !a.internal && !a.address.startsWith("fe80:"))
      .map((a) => a!.address);
    for (const address of others) {
      expect(await reach(address, Number(metrics.port)), `${address}:${metrics.port}`).toBe("ECONNREFUSED");
      expect(await reach(address, Number(mcp.port)), `${address}:${mcp.port}`).toBe("ECONNREFUSED");
    }
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});

describe("security: the shell adapter never invokes a shell", () => {
  const HOSTILE = ["$(touch pwned-subst)", "; touch pwned-semicolon", "`touch pwned-backtick`", "&& touch pwned-and", "| touch pwned-pipe", "a b  'c' \"d\"", "$HOME", "*"];

  it("hands shell syntax in the args to the program literally, and no command in them runs", async () => {
    h = await harness([{ id: "sh", adapter: { kind: "shell", command: process.execPath, args: ["./print-argv.mjs", ...HOSTILE], cwd: "." }, retry: once }], {
      fixtures: ["print-argv.mjs"],
    });
    const task = await runOne(h, "sh", { note: "$(touch pwned-payload)" });
    expect(task.status).toBe("completed");
    expect(task.result).toEqual({ argv: HOSTILE, payload: { note: "$(touch pwned-payload)" } });
    for (const dir of [h.personasDir, h.temp.dir, process.cwd()]) expect(readdirSync(dir).filter((f) => f.startsWith("pwned"))).toEqual([]);
  });

  it("treats a command holding a shell string as one program name, which is not found, and runs nothing", async () => {
    h = await harness([{ id: "sh", adapter: { kind: "shell", command: "touch pwned-command; echo", args: [], cwd: "." }, retry: once }]);
    const task = await runOne(h, "sh");
    expect(task.status).toBe("failed");
    expect(task.error?.message).toMatch(/touch pwned-command; echo.*ENOENT/);
    for (const dir of [h.personasDir, h.temp.dir, process.cwd()]) expect(readdirSync(dir).filter((f) => f.startsWith("pwned"))).toEqual([]);
  });
});

describe("security: a module adapter's path cannot leave the personas folder", () => {
  /** A harness whose personas folder is `<temp>/personas`, with adapter-ok.mjs also placed outside it, at `<temp>/outside.mjs`. */
  async function withOutside(personas: TestPersona[], allowAbsoluteModules = false): Promise<{ h: Harness; outside: string }> {
    h = await harness(personas, { fixtures: ["adapter-ok.mjs"], config: { allowAbsoluteModules } });
    const outside = h.temp.path("outside.mjs");
    copyFileSync(new URL("adapter-ok.mjs", FIXTURES), outside);
    return { h, outside };
  }

  it("runs a module inside the personas folder", async () => {
    const { h } = await withOutside([{ id: "inside", adapter: { kind: "module", path: "./adapter-ok.mjs" }, retry: once }]);
    const task = await runOne(h, "inside");
    expect(task.status).toBe("completed");
    expect((task.result as { loadedFrom: string }).loadedFrom).toMatch(/\/personas\/adapter-ok\.mjs$/);
  });

  /** Builds a second supervisor on h's store for `extra` personas written beside h's own: the constructor is where a bad module path is refused. */
  async function construct(h: Harness, extra: TestPersona[], allowAbsoluteModules = false): Promise<Supervisor> {
    writePersonas(h.personasDir, extra);
    const personas = await syncPersonas(h.store, h.personasDir, Date.now());
    return new Supervisor({ store: h.store, personas, config: { ...h.config, allowAbsoluteModules }, logger: silentLogger() });
  }
  const inside: TestPersona = { id: "inside", adapter: { kind: "module", path: "./adapter-ok.mjs" }, retry: once };

  it("refuses, when the supervisor is built, a persona whose relative path climbs out with ../, naming its file", async () => {
    const { h } = await withOutside([inside]);
    await expect(construct(h, [{ id: "climber", adapter: { kind: "module", path: "../outside.mjs" }, retry: once }])).rejects.toMatchObject({
      code: "PERSONA_INVALID",
      message: expect.stringMatching(/climber\.md: adapter\.path: persona "climber" adapter\.path "\.\.\/outside\.mjs": leads out of the personas folder/),
    });
  });

  it("refuses a module file swapped for a symlink pointing outside after the start, failing the task with ADAPTER_NOT_FOUND, not retryable", async () => {
    const { h, outside } = await withOutside([{ ...inside, retry: { ...once, maxAttempts: 3 } }]);
    rmSync(join(h.personasDir, "adapter-ok.mjs"));
    symlinkSync(outside, join(h.personasDir, "adapter-ok.mjs"));
    const task = await runOne(h, "inside");
    expect(task.status).toBe("failed");
    expect(task.attempts).toBe(1);
    expect(task.error).toMatchObject({ code: "ADAPTER_NOT_FOUND", retryable: false });
    expect(task.error?.message).toMatch(/^persona "inside" adapter\.path "\.\/adapter-ok\.mjs": leads out of the personas folder/);
  });

  it("refuses an absolute path outside the folder unless allowAbsoluteModules is set, saying which setting allows it", async () => {
    const probe = makeTempDir("roster-sec-abs-");
    cleanups.push(() => probe.cleanup());
    const outside = probe.path("outside.mjs");
    copyFileSync(new URL("adapter-ok.mjs", FIXTURES), outside);
    const persona: TestPersona = { id: "absolute", adapter: { kind: "module", path: outside }, retry: once };

    const { h: plain } = await withOutside([inside]);
    await expect(construct(plain, [persona])).rejects.toMatchObject({
      code: "PERSONA_INVALID",
      message: expect.stringMatching(/is outside the personas folder; set allowAbsoluteModules to allow absolute module paths/),
    });
    await plain.close();

    const allowed = await runOne((await withOutside([persona], true)).h, "absolute");
    expect(allowed.status).toBe("completed");
    expect(allowed.result).toEqual({ loadedFrom: `file://${outside}` });
  });

  it("takes allowAbsoluteModules from ROSTER_ALLOW_ABSOLUTE_MODULES, off by default, and names the variable when its value is not a boolean", () => {
    expect(loadConfig({}, {}).allowAbsoluteModules).toBe(false);
    expect(loadConfig({}, { ROSTER_ALLOW_ABSOLUTE_MODULES: "1" }).allowAbsoluteModules).toBe(true);
    expect(loadConfig({}, { ROSTER_ALLOW_ABSOLUTE_MODULES: "false" }).allowAbsoluteModules).toBe(false);
    expect(() => loadConfig({}, { ROSTER_ALLOW_ABSOLUTE_MODULES: "yes please" })).toThrow(
      'ROSTER_ALLOW_ABSOLUTE_MODULES: must be 1, true, 0 or false, got "yes please"',
    );
  });

  it("still refuses a ../ path when allowAbsoluteModules is set: the setting covers absolute paths only", async () => {
    const { h } = await withOutside([inside], true);
    await expect(construct(h, [{ id: "climber", adapter: { kind: "module", path: "../outside.mjs" }, retry: once }], true)).rejects.toMatchObject({
      code: "PERSONA_INVALID",
      message: expect.stringMatching(/leads out of the personas folder/),
    });
  });
});

describe("security: size limits on what adapters return", () => {
  const LIMIT = 4_096;
  const sized = (): Promise<Harness> =>
    harness(
      [
        { id: "sized", adapter: { kind: "module", path: "./adapter-size.mjs" }, retry: once },
        { id: "echo", adapter: { kind: "echo" } },
      ],
      { fixtures: ["adapter-size.mjs"], config: { maxPayloadBytes: LIMIT } },
    );

  it("defaults the limit to 1 MiB", () => {
    expect(loadConfig({}, {}).maxPayloadBytes).toBe(1024 * 1024);
  });

  it("completes a task whose result is just under the limit", async () => {
    h = await sized();
    const task = await runOne(h, "sized", { result: LIMIT - 2 });
    expect(task.status).toBe("completed");
    expect(task.result).toBe("r".repeat(LIMIT - 2));
  });

  it("fails a task whose result is over the limit with ADAPTER_OUTPUT_INVALID giving the size and the limit, storing no result", async () => {
    h = await sized();
    const task = await runOne(h, "sized", { result: LIMIT });
    expect(task.status).toBe("failed");
    expect(task.error).toMatchObject({ code: "ADAPTER_OUTPUT_INVALID", retryable: false, message: `result: ${LIMIT + 2} bytes of JSON is over the limit of ${LIMIT}` });
    expect(task.result).toBeNull();
  });

  it("fails a planner whose child task's payload is over the limit, naming the child and field, and enqueues no child", async () => {
    h = await sized();
    const task = await runOne(h, "sized", { childPayload: LIMIT });
    expect(task.status).toBe("failed");
    expect(task.error?.code).toBe("ADAPTER_OUTPUT_INVALID");
    expect(task.error?.message).toBe(`adapter output rejected: tasks[0].payload is ${LIMIT + 2} bytes of JSON, over the limit of ${LIMIT}`);
    expect(await h.store.tasks.list({ parentId: task.id })).toEqual([]);
  });

  it("fails a planner whose child tasks together are over the batch limit, and enqueues none of them", async () => {
    h = await sized();
    // 400 children of ~250 bytes: ~100 KB of JSON, over 16 × 4096 for the whole batch.
    const task = await runOne(h, "sized", { children: 400 });
    expect(task.status).toBe("failed");
    expect(task.error).toMatchObject({ code: "ADAPTER_OUTPUT_INVALID", retryable: false });
    expect(task.error?.message).toMatch(/^tasks: \d+ bytes of JSON is over the limit of 65536$/);
    expect(await h.store.tasks.list({ parentId: task.id })).toEqual([]);
  });
});
