import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { FIXTURES, writePersonas, type TestPersona } from "./helpers.js";

const SCRIPT = fileURLToPath(new URL("runtime-start.mjs", FIXTURES));

let temp: TempDir | null = null;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  temp?.cleanup();
  temp = null;
});

function setup(personas: TestPersona[]): { dbPath: string; personasDir: string } {
  temp = makeTempDir("roster-proc-");
  const personasDir = temp.path("personas");
  mkdirSync(personasDir);
  writePersonas(personasDir, personas);
  return { dbPath: temp.path("roster.db"), personasDir };
}

function start(config: Record<string, unknown>, options: Record<string, unknown> = {}): { child: ChildProcess; ready: Promise<string>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [SCRIPT, JSON.stringify({ logLevel: "silent", threads: 2, pollIntervalMs: 20, metrics: { enabled: false }, ...config }), JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /ready (\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.on("exit", (code) => reject(new Error(`exited with ${code} before ready: ${stderr}`)));
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, ready, exit };
}

/** Polls the database (another process writes it) until `check` holds. */
async function until(store: Store, check: (store: Store) => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check(store))) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

const running = async (store: Store) => (await store.tasks.list({ status: ["claimed", "in_progress"], limit: 0 })).length;

describe("roster start as a process", () => {
  it("exits 0 on SIGTERM mid-run and leaves no task claimed or in progress by its supervisor", async () => {
    const { dbPath, personasDir } = setup([{ id: "sleeper", adapter: { kind: "sleep" }, concurrency: 5 }]);
    const store = await openStore({ path: dbPath });
    await syncPersonas(store, personasDir, Date.now());
    try {
      const { ids } = await store.tasks.enqueue({
        tasks: Array.from({ length: 8 }, (_, i) => ({ persona: "sleeper", title: `long ${i}`, payload: { ms: 60_000 } })),
        now: Date.now(),
      });
      const proc = start({ dbPath, personasDir, shutdownGraceMs: 200 });
      const agentId = await proc.ready;
      await until(store, async (s) => (await running(s)) === 5);
      proc.child.kill("SIGTERM");
      expect(await proc.exit).toBe(0);

      expect(await running(store)).toBe(0);
      const tasks = await store.tasks.list({ limit: 0 });
      expect(tasks.every((t) => t.status === "pending" && t.attempts === 0 && t.assignedAgentId === null)).toBe(true);
      const released = await store.tasks.events({ taskId: ids[0]!, limit: 0 });
      expect(released.map((e) => e.type)).toContain("task:released");
      const agent = await store.agents.get({ agentId });
      expect(agent?.status).toBe("deregistered");
    } finally {
      await store.close();
    }
  });

  it("finishes every task after a kill -9 mid-run once a new supervisor runs with exitWhenIdle", async () => {
    const { dbPath, personasDir } = setup([
      { id: "sleeper", adapter: { kind: "sleep" }, concurrency: 3, leaseMs: 400, retry: { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 } },
    ]);
    const store = await openStore({ path: dbPath });
    await syncPersonas(store, personasDir, Date.now());
    try {
      await store.tasks.enqueue({
        tasks: Array.from({ length: 6 }, (_, i) => ({ persona: "sleeper", title: `task ${i}`, payload: { ms: 300 } })),
        now: Date.now(),
      });
      const first = start({ dbPath, personasDir });
      await first.ready;
      await until(store, async (s) => (await running(s)) > 0);
      first.child.kill("SIGKILL");
      await first.exit;
      expect(await running(store)).toBeGreaterThan(0);

      const second = start({ dbPath, personasDir, reapIntervalMs: 100 }, { exitWhenIdle: true });
      expect(await second.exit).toBe(0);
      const tasks = await store.tasks.list({ limit: 0 });
      expect(tasks).toHaveLength(6);
      expect(tasks.every((t) => t.status === "completed")).toBe(true);
    } finally {
      await store.close();
    }
  });
});
