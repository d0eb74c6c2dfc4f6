import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { RosterError } from "../../src/errors.js";
import { createLoopHealth, createMetrics, startMetricsServer, type MetricsServer } from "../../src/metrics/index.js";
import { httpGet, tempStore } from "./helpers.js";

describe("the metrics server", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function serve(lastTickAt: () => number | null, clock: ManualClock, staleAfterMs = 10_000): Promise<MetricsServer> {
    const { store, cleanup } = await tempStore();
    const metrics = createMetrics({ store, defaultMetrics: false });
    const server = await startMetricsServer({ metrics, port: 0, health: createLoopHealth({ lastTickAt, clock, staleAfterMs }) });
    cleanups.push(cleanup, () => server.close());
    return server;
  }

  it("listens on 127.0.0.1 by default", async () => {
    const clock = new ManualClock();
    const server = await serve(() => clock.now(), clock);
    expect(server.host).toBe("127.0.0.1");
    expect(server.port).toBeGreaterThan(0);
  });

  it("answers /healthz with 200 while the loop has ticked recently", async () => {
    const clock = new ManualClock();
    const lastTick = clock.now();
    const server = await serve(() => lastTick, clock);
    clock.advance(9_000);
    const res = await httpGet(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ ok: true, status: "ok", sinceLastTickMs: 9_000 });
  });

  it("answers /healthz with 503 once the loop has stalled past the threshold", async () => {
    const clock = new ManualClock();
    const lastTick = clock.now();
    const server = await serve(() => lastTick, clock);
    clock.advance(10_001);
    const res = await httpGet(`${server.url}/healthz`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ ok: false, status: "stalled", sinceLastTickMs: 10_001, staleAfterMs: 10_000 });
  });

  it("answers /healthz with 503 before the loop's first tick", async () => {
    const clock = new ManualClock();
    const server = await serve(() => null, clock);
    const res = await httpGet(`${server.url}/healthz`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ status: "not-started" });
  });

  it("answers 404 for other paths and 405 for other methods", async () => {
    const clock = new ManualClock();
    const server = await serve(() => clock.now(), clock);
    expect((await httpGet(`${server.url}/`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it("answers 500 with the reason when the scrape's query fails", async () => {
    const { store, cleanup } = await tempStore();
    const metrics = createMetrics({ store, defaultMetrics: false });
    const errors: Error[] = [];
    const clock = new ManualClock();
    const server = await startMetricsServer({ metrics, port: 0, health: createLoopHealth({ lastTickAt: () => clock.now(), clock }), onError: (e) => errors.push(e) });
    cleanups.push(cleanup, () => server.close());
    await store.close();
    const res = await httpGet(`${server.url}/metrics`);
    expect(res.status).toBe(500);
    expect(errors).toHaveLength(1);
  });

  it("refuses a port outside 0..65535 with an error naming the field", async () => {
    const { store, cleanup } = await tempStore();
    cleanups.push(cleanup);
    const clock = new ManualClock();
    const start = startMetricsServer({ metrics: createMetrics({ store, defaultMetrics: false }), port: 70_000, health: createLoopHealth({ lastTickAt: () => null, clock }) });
    await expect(start).rejects.toThrow(RosterError);
    await expect(start).rejects.toThrow(/metrics\.port/);
  });

  it("reports a port already in use as a clear error", async () => {
    const clock = new ManualClock();
    const first = await serve(() => clock.now(), clock);
    const { store, cleanup } = await tempStore();
    cleanups.push(cleanup);
    const start = startMetricsServer({ metrics: createMetrics({ store, defaultMetrics: false }), port: first.port, health: createLoopHealth({ lastTickAt: () => null, clock }) });
    await expect(start).rejects.toThrow(/address in use/);
  });
});
