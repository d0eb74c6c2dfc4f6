import { afterEach, describe, expect, it } from "vitest";
import { finished, harness, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** Most intervals open at once, from [start, end] pairs. */
function maxOverlap(intervals: Array<[number, number]>): number {
  const points = intervals.flatMap(([s, e]) => [[s, 1] as const, [e, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (open += d));
  return max;
}

describe("supervisor: concurrency", () => {
  it("runs 200 sleep tasks of 300 ms at concurrency 200 overlapping (at least 150 at once)", async () => {
    h = await harness([{ id: "sleeper", adapter: { kind: "sleep" }, concurrency: 200 }], { config: { concurrency: 200 } });
    const { store, supervisor } = h;
    await store.tasks.enqueue({
      tasks: Array.from({ length: 200 }, (_, i) => ({ persona: "sleeper", title: `sleep ${i}`, payload: { ms: 300 } })),
      now: Date.now(),
    });
    const done = finished(supervisor.events, 200);
    let peakBusy = 0;
    supervisor.events.on("slots:changed", (e) => (peakBusy = Math.max(peakBusy, e.busy)));
    await supervisor.start();
    const runs = await done;
    expect(runs.every((r) => r.outcome === "completed")).toBe(true);
    const tasks = await store.tasks.list({ persona: "sleeper", limit: 0 });
    expect(tasks.every((t) => t.status === "completed" && t.startedAt !== null && t.finishedAt !== null)).toBe(true);
    // From the recorded start and end times.
    expect(maxOverlap(tasks.map((t) => [t.startedAt!, t.finishedAt!]))).toBeGreaterThanOrEqual(150);
    expect(peakBusy).toBeLessThanOrEqual(200);
  });
});
