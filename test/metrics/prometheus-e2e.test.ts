import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { createLoopHealth, createMetrics, startMetricsServer } from "../../src/metrics/index.js";
import { findBinary, requireBinaryInCi } from "./binaries.js";
import { tempStore } from "./helpers.js";
import { startPrometheus, until } from "./prometheus.js";

const prometheus = findBinary("prometheus");
requireBinaryInCi("prometheus", prometheus);

describe("a real Prometheus server", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  // Outside CI a machine without prometheus skips; in CI requireBinaryInCi has already failed the file.
  it.skipIf(prometheus === null)("scrapes roster's metrics and answers roster_tasks_finished_total through its query API", async () => {
    const { store, cleanup } = await tempStore();
    cleanups.push(cleanup);
    const clock = new ManualClock();
    const metrics = createMetrics({ store });
    const server = await startMetricsServer({ metrics, port: 0, health: createLoopHealth({ lastTickAt: () => clock.now(), clock }) });
    cleanups.push(() => server.close());
    await store.tasks.enqueue({ tasks: [1, 2, 3].map((i) => ({ persona: "coder", title: `t${i}` })), now: clock.now() });
    const claimed = await store.tasks.claim({ persona: "coder", agentId: "a", limit: 3, now: clock.now() });
    for (const t of claimed) await store.tasks.completeIfLeased({ taskId: t.id, leaseToken: t.leaseToken, now: clock.now() });

    const prom = await startPrometheus(prometheus!, `127.0.0.1:${server.port}`);
    cleanups.push(() => prom.stop());
    let result: Awaited<ReturnType<typeof prom.query>> = [];
    await until(async () => {
      result = await prom.query('roster_tasks_finished_total{job="roster",outcome="completed"}');
      return result.length > 0;
    }, 30_000, "a scrape of roster_tasks_finished_total");

    expect(result).toHaveLength(1);
    expect(result[0]!.metric).toMatchObject({ persona: "coder", outcome: "completed", instance: `127.0.0.1:${server.port}` });
    expect(Number(result[0]!.value[1])).toBe(3);
    const up = await prom.query('up{job="roster"}');
    expect(Number(up[0]!.value[1])).toBe(1);
  });
});
