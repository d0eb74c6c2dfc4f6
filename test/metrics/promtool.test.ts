import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { createLoopHealth, createMetrics, createTransactionRecorder, startMetricsServer } from "../../src/metrics/index.js";
import { findBinary, requireBinaryInCi } from "./binaries.js";
import { httpGet, tempStore } from "./helpers.js";

const promtool = findBinary("promtool");
requireBinaryInCi("promtool", promtool);

describe("promtool check metrics", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  // Outside CI a machine without promtool skips; in CI requireBinaryInCi has already failed the file.
  it.skipIf(promtool === null)("finds no problem in a real scrape with every roster series present", async () => {
    const recorder = createTransactionRecorder();
    const { store, cleanup } = await tempStore({ onTransaction: recorder.onTransaction });
    const metrics = createMetrics({ store });
    recorder.bind(metrics);
    const clock = new ManualClock();
    const server = await startMetricsServer({ metrics, port: 0, health: createLoopHealth({ lastTickAt: () => clock.now(), clock }) });
    cleanups.push(cleanup, () => server.close());
    await store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a" }, { persona: "coder", title: "b" }], now: clock.now() });
    const claimed = await store.tasks.claim({ persona: "coder", agentId: "a1", limit: 2, now: clock.now() });
    await store.tasks.completeIfLeased({ taskId: claimed[0]!.id, leaseToken: claimed[0]!.leaseToken, now: clock.now() });
    await store.tasks.failIfLeased({ taskId: claimed[1]!.id, leaseToken: claimed[1]!.leaseToken, error: { message: "x" }, now: clock.now() });

    const scrape = await httpGet(`${server.url}/metrics`);
    const check = spawnSync(promtool!, ["check", "metrics"], { input: scrape.body, encoding: "utf8" });

    expect(scrape.body).toContain("roster_tasks_finished_total{");
    expect(scrape.body).toContain("roster_db_transaction_duration_seconds_bucket{");
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
    expect(check.status).toBe(0);
  });
});
