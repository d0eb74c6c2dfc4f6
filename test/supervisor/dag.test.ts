import { afterEach, describe, expect, it } from "vitest";
import type { TaskEvent } from "../../src/store/index.js";
import { finished, harness, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe("supervisor: decomposition", () => {
  it("runs a planner's goal as a three-level DAG in dependency order", async () => {
    h = await harness([
      { id: "planner", adapter: { kind: "planner" } },
      { id: "implementer", adapter: { kind: "echo" } },
      { id: "reviewer", adapter: { kind: "echo" } },
    ]);
    const { store, supervisor } = h;
    const { ids } = await store.tasks.enqueue({
      tasks: [{ persona: "planner", title: "goal", payload: { goal: "Build it: alpha, beta and gamma" } }],
      now: Date.now(),
    });
    const root = ids[0]!;
    // root + alpha + beta + subplan + review, then the sub-plan's 3 steps + its review.
    const done = finished(supervisor.events, 9, (e) => e.outcome === "completed");
    await supervisor.start();
    const runs = await done;
    // A completed attempt carries no error code (what the store recorded decides, not the settlement's kind).
    expect(runs.filter((r) => r.errorCode !== undefined)).toEqual([]);

    const all = await store.tasks.list({ rootId: root, limit: 0 });
    expect(all).toHaveLength(9);
    expect(all.every((t) => t.status === "completed")).toBe(true);
    const children = all.filter((t) => t.parentId === root);
    expect(children.map((t) => t.persona).sort()).toEqual(["implementer", "implementer", "planner", "reviewer"]);
    const subplan = children.find((t) => t.persona === "planner")!;
    const grandchildren = all.filter((t) => t.parentId === subplan.id);
    expect(grandchildren.map((t) => t.persona).sort()).toEqual(["implementer", "implementer", "implementer", "reviewer"]);
    const review = children.find((t) => t.persona === "reviewer")!;
    expect([...review.dependsOn].sort()).toEqual(children.filter((t) => t.persona !== "reviewer").map((t) => t.id).sort());

    // Dependency order from the audit trail: a task is claimed only after each dependency completed.
    const events = new Map<number, TaskEvent[]>();
    for (const t of all) events.set(t.id, await store.tasks.events({ taskId: t.id, limit: 0 }));
    const firstId = (taskId: number, type: string) => events.get(taskId)!.find((e) => e.type === type)!.id;
    let edges = 0;
    for (const t of all) {
      for (const dep of t.dependsOn) {
        expect(firstId(t.id, "task:claimed")).toBeGreaterThan(firstId(dep, "task:completed"));
        edges++;
      }
    }
    expect(edges).toBe(3 + 3);
    // The reviewer saw its dependencies' results.
    const reviewed = (review.result as { reviewed: Array<{ id: number }> }).reviewed.map((r) => r.id).sort();
    expect(reviewed).toEqual([...review.dependsOn].sort());
  });
});
