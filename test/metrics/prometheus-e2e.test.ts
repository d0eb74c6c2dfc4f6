import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLoopHealth, createMetrics, startMetricsServer } from "../../src/metrics/index.js";
// The supervisor runs adapters on worker threads, which load the built JS: take it from dist/ (npm test builds first).
import { Supervisor } from "../helpers/built-supervisor.js";
import { findBinary, requireBinaryInCi } from "./binaries.js";
import { httpGet, personasFrom, tempStore } from "./helpers.js";
import { startPrometheus, until } from "./prometheus.js";

const prometheus = findBinary("prometheus");
requireBinaryInCi("prometheus", prometheus);

const PERSONAS = [{ id: "writer", name: "Writer", adapter: { kind: "echo" }, concurrency: 4, retry: { maxAttempts: 1 } }];

describe("a real Prometheus server", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  // Outside CI a machine without prometheus skips; in CI requireBinaryInCi has already failed the file.
  it.skipIf(prometheus === null)("scrapes the supervisor's metrics port and answers roster_tasks_finished_total through its query API", async () => {
    const t = await tempStore({ personas: PERSONAS, now: Date.now() });
    cleanups.push(t.cleanup);
    const { store } = t;
    const metrics = createMetrics({ store });
    const config = loadConfig({ dbPath: t.path, personasDir: t.dir, concurrency: 4, threads: 1, pollIntervalMs: 50, shutdownGraceMs: 0 }, {});
    const supervisor = new Supervisor({ store, personas: personasFrom(PERSONAS), config });
    metrics.attachSupervisor(supervisor);
    const server = await startMetricsServer({ metrics, port: 0, health: createLoopHealth({ lastTickAt: () => supervisor.stats().lastTickAt }) });
    cleanups.push(() => server.close());
    let completed = 0;
    const allDone = new Promise<void>((resolve) => store.events.on("task:completed", () => ++completed === 3 && resolve()));
    await supervisor.start();
    cleanups.push(() => supervisor.stop("test"));
    await store.tasks.enqueue({ tasks: [1, 2, 3].map((i) => ({ persona: "writer", title: `t${i}` })), now: Date.now() });
    supervisor.wake(null);
    await allDone;

    const prom = await startPrometheus(prometheus!, `127.0.0.1:${server.port}`);
    cleanups.push(() => prom.stop());
    let result: Awaited<ReturnType<typeof prom.query>> = [];
    await until(async () => {
      result = await prom.query('roster_tasks_finished_total{job="roster",outcome="completed"}');
      return result.length > 0;
    }, 30_000, "a scrape of roster_tasks_finished_total");

    expect(result).toHaveLength(1);
    expect(result[0]!.metric).toMatchObject({ persona: "writer", outcome: "completed", instance: `127.0.0.1:${server.port}` });
    expect(Number(result[0]!.value[1])).toBe(3);
    const up = await prom.query('up{job="roster"}');
    expect(Number(up[0]!.value[1])).toBe(1);
    expect((await httpGet(`${server.url}/healthz`)).status).toBe(200);
  });
});
