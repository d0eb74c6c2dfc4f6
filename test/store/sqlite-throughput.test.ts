import { describe, expect, it } from "vitest";
import { openTestStore } from "../helpers/store.js";

/**
 * The dashboard's throughput read on SQLite finds its window's first event by a binary
 * search of task_events' primary key (migration 0010 dropped the index of `at`): every
 * completion, failure and retry written at or after `since` is counted in its bucket, none
 * before, whatever the number of older events.
 */
describe("sqlite: the throughput read without an index of event times", () => {
  it("counts exactly the settlements at or after since, by bucket, over many older events", async () => {
    const t = await openTestStore();
    try {
      const { store, clock } = t;
      const start = clock.now();
      // Ten minutes of work, one minute apart: 30 tasks a minute, 2 of them failing for good.
      const perMinute: Array<{ at: number; completed: number; failed: number }> = [];
      for (let minute = 0; minute < 10; minute++) {
        await store.tasks.enqueue({ tasks: Array.from({ length: 30 }, (_, i) => ({ persona: "worker", title: `m${minute} t${i}`, policy: { maxAttempts: 1 } })), now: clock.now() });
        const claimed = await store.tasks.claim({ persona: "worker", agentId: "a", limit: 30, now: clock.now() });
        expect(claimed).toHaveLength(30);
        const results = await store.tasks.settle({
          settlements: claimed.map((c, i) =>
            i < 2
              ? { kind: "fail" as const, taskId: c.id, leaseToken: c.leaseToken, error: { code: "ADAPTER_FAILED", message: "no", retryable: false } }
              : { kind: "complete" as const, taskId: c.id, leaseToken: c.leaseToken, result: i },
          ),
          now: clock.now(),
        });
        expect(results.map((r) => (r.ok ? r.outcome : r.code))).toEqual([...Array(2).fill("failed"), ...Array(28).fill("completed")]);
        perMinute.push({ at: clock.now(), completed: 28, failed: 2 });
        clock.advance(60_000);
      }
      for (const fromMinute of [0, 3, 9]) {
        const since = start + fromMinute * 60_000;
        const buckets = await store.ui!.throughput({ since, bucketMs: 60_000 });
        expect(buckets).toEqual(
          perMinute.slice(fromMinute).map((m, i) => ({ at: since + i * 60_000, completed: m.completed, failed: m.failed, retried: 0 })),
        );
      }
      // A window after the last event, and one before the first: empty and everything.
      expect(await store.ui!.throughput({ since: clock.now(), bucketMs: 60_000 })).toEqual([]);
      const all = await store.ui!.throughput({ since: start - 3_600_000, bucketMs: 3_600_000 * 2 });
      expect(all).toEqual([{ at: start - 3_600_000, completed: 280, failed: 20, retried: 0 }]);
    } finally {
      await t.close();
    }
  });
});
