import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { EVENT_ROWS_PER_STATEMENT } from "../../src/store/sqlite/event-rows.js";
import { openTestStore } from "../helpers/store.js";

/**
 * A batch's task_events rows (src/store/sqlite/event-rows.ts): written in chunks of positional
 * VALUES, they are the rows and the data text one task at a time writes (json_object's), one per
 * task and transition (docs/ARCHITECTURE.md rule 9), in the batch's order.
 */
describe("sqlite: a batch's audit rows", () => {
  it("writes one task:claimed and one task:completed row per task of a batch longer than a chunk, as a batch of one does", async () => {
    const t = await openTestStore();
    try {
      const { store, clock } = t;
      const count = EVENT_ROWS_PER_STATEMENT + 7;
      // A persona without a concurrency limit, so one claim takes the whole batch.
      await store.personas.sync({ personas: [{ id: "bulk", name: "Bulk", definition: "Takes many.", config: { leaseMs: 60_000 }, sourcePath: null }], now: clock.now() });
      await store.tasks.enqueue({ tasks: Array.from({ length: count + 1 }, (_, i) => ({ persona: "bulk", title: `t${i}` })), now: clock.now() });
      const [single] = await store.tasks.claim({ persona: "bulk", agentId: "one", limit: 1, now: clock.now() });
      expect((await store.tasks.completeIfLeased({ taskId: single!.id, leaseToken: single!.leaseToken, result: 0, now: clock.now() })).ok).toBe(true);
      clock.advance(5);
      const claimed = await store.tasks.claim({ persona: "bulk", agentId: "many", limit: count, now: clock.now() });
      expect(claimed).toHaveLength(count);
      clock.advance(5);
      const results = await store.tasks.settle({ settlements: claimed.map((c) => ({ kind: "complete" as const, taskId: c.id, leaseToken: c.leaseToken, result: c.id })), now: clock.now() });
      expect(results.every((r) => r.ok && r.outcome === "completed")).toBe(true);
      const db = new Database(t.path, { readonly: true });
      const rows = db.prepare("SELECT id, task_id, type, at, agent_id, attempt, data FROM task_events WHERE type IN ('task:claimed','task:completed') ORDER BY id").all() as Array<{
        id: number; task_id: number; type: string; at: number; agent_id: string; attempt: number; data: string;
      }>;
      db.close();
      const one = rows.filter((r) => r.task_id === single!.id);
      expect(one.map((r) => [r.type, r.agent_id, r.attempt, r.data])).toEqual([
        ["task:claimed", "one", 1, `{"leaseExpiresAt":${single!.leaseExpiresAt}}`],
        ["task:completed", "one", 1, '{"readied":0}'],
      ]);
      const batch = rows.filter((r) => r.task_id !== single!.id);
      const inOrder = [...claimed].sort((a, b) => a.id - b.id);
      expect(batch.filter((r) => r.type === "task:claimed").map((r) => [r.task_id, r.at, r.agent_id, r.attempt, r.data]).sort((a, b) => (a[0] as number) - (b[0] as number))).toEqual(
        inOrder.map((c) => [c.id, c.claimedAt, "many", 1, `{"leaseExpiresAt":${c.leaseExpiresAt}}`]),
      );
      expect(batch.filter((r) => r.type === "task:completed").map((r) => [r.task_id, r.at, r.agent_id, r.attempt, r.data]).sort((a, b) => (a[0] as number) - (b[0] as number))).toEqual(
        inOrder.map((c) => [c.id, clock.now(), "many", 1, '{"readied":0}']),
      );
      // The claims' rows in the claim's order (priority, then oldest), before every completion's.
      expect(batch.slice(0, count).map((r) => r.task_id)).toEqual(claimed.map((c) => c.id));
    } finally {
      await t.close();
    }
  });
});
