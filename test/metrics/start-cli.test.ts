import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { httpGet, parseExposition, sumOf, valueOf } from "./helpers.js";
import { until } from "./prometheus.js";
import { syncPersonaFolder } from "../helpers/personas.js";

// `roster start` as users run it: the built CLI in a child process (npm test builds first).
const BIN = join(import.meta.dirname, "..", "..", "dist", "src", "cli", "bin.js");
const FIXTURE_PERSONAS = join(import.meta.dirname, "..", "fixtures", "obs-personas");
const SECRETS = ["s3cr3t-deploy-token-4242", "sk-obs-fixture-0123456789", "leaky-secret-value-31337"];

interface Started {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
}

describe("roster start", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A fresh database (roster start syncs the fixture personas into it), with `store` open for the test's own reads and writes. */
  async function setup(): Promise<{ dir: string; db: string; personas: string; store: Store }> {
    const dir = mkdtempSync(join(tmpdir(), "roster-obs-start-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const personas = join(dir, "personas");
    cpSync(FIXTURE_PERSONAS, personas, { recursive: true });
    const db = join(dir, "roster.db");
    const store = await openStore({ path: db });
    cleanups.push(() => store.close());
    await syncPersonaFolder(store, personas);
    return { dir, db, personas, store };
  }

  function start(args: string[]): Started {
    const child = spawn(process.execPath, [BIN, "start", ...args], { env: { ...process.env, ROSTER_DB: "", ROSTER_LOG_LEVEL: "" }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
    });
    return { child, stderr: () => stderr, exited };
  }

  function logLines(text: string): Array<Record<string, unknown>> {
    return text
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it("serves /metrics whose counters and gauges match the database, store transactions included", async () => {
    const { db, personas, store } = await setup();
    await store.tasks.enqueue({ tasks: [1, 2, 3, 4].map((i) => ({ persona: "writer", title: `w${i}` })), now: Date.now() });
    const run = start(["--db", db, "--personas", personas, "--metrics-port", "0", "--threads", "1"]);
    let url = "";
    await until(async () => {
      const line = logLines(run.stderr()).find((l) => l.msg === "serving metrics");
      url = typeof line?.url === "string" ? line.url : "";
      return url !== "" || run.child.exitCode !== null;
    }, 30_000, "the metrics URL in the log");
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await until(async () => ((await store.tasks.counts()).writer?.completed ?? 0) === 4, 30_000, "the four tasks to complete");

    const samples = parseExposition((await httpGet(url)).body);
    expect(valueOf(samples, "roster_tasks", { persona: "writer", state: "completed" })).toBe(4);
    expect(valueOf(samples, "roster_tasks_claimed_total", { persona: "writer" })).toBe(4);
    expect(valueOf(samples, "roster_tasks_finished_total", { persona: "writer", outcome: "completed" })).toBe(4);
    expect(sumOf(samples, "roster_task_run_duration_seconds_count", { persona: "writer" })).toBe(4);
    // The store was opened with the onTransaction hook: its claims and settlements were timed.
    expect(valueOf(samples, "roster_db_transaction_duration_seconds_count", { name: "tasks.claim" })).toBeGreaterThan(0);
    expect((await httpGet(url.replace(/\/metrics$/, "/healthz"))).status).toBe(200);

    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });

  it("serves no metrics with --no-metrics and logs the status as plain lines when stderr is not a terminal", async () => {
    const { db, personas, store } = await setup();
    await store.tasks.enqueue({ tasks: [{ persona: "writer", title: "w" }], now: Date.now() });
    const run = start(["--db", db, "--personas", personas, "--no-metrics", "--exit-when-idle", "--threads", "1"]);
    expect(await run.exited).toBe(0);
    const lines = logLines(run.stderr());
    expect(lines.some((l) => l.msg === "serving metrics")).toBe(false);
    expect(lines.filter((l) => l.msg === "status").at(-1)).toMatchObject({ done: { writer: "1/1" } });
    expect(run.stderr()).not.toContain("\x1b[");
  });

  it("never logs a persona's shell adapter env secret, even at trace level and when the agent prints it", async () => {
    const { db, personas, store } = await setup();
    const now = Date.now();
    await store.tasks.enqueue({ tasks: [{ persona: "leaky", title: "leak" }, { persona: "deployer", title: "deploy" }], now });
    const run = start(["--db", db, "--personas", personas, "--no-metrics", "--exit-when-idle", "--log-level", "trace", "--threads", "1"]);
    expect(await run.exited).toBe(0);

    const counts = await store.tasks.counts();
    expect(counts).toMatchObject({ leaky: { failed: 1 }, deployer: { completed: 1 } });
    // The secret was really in play: the agent printed it, and its failure recorded that output.
    const [leak] = await store.tasks.list({ persona: "leaky" });
    expect(JSON.stringify(leak!.error)).toContain("leaky-secret-value-31337");
    const out = run.stderr();
    expect(logLines(out).some((l) => l.msg === "task finished" && l.persona === "leaky")).toBe(true);
    for (const secret of SECRETS) expect(out).not.toContain(secret);
  });
});
