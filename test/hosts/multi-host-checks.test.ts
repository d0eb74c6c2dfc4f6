import { describe, expect, it } from "vitest";
import type { TaskEvent } from "../../src/store/index.js";
import { judgeMultiHost, type Expected, type FinalTask, type Holder } from "../helpers/multi-host-checks.js";

/** The multi-host verdict's rules on hand-made trails (test/helpers/multi-host-checks.ts). */
let nextId = 1;
function ev(taskId: number, type: string, agentId: string | null, attempt: number | null, data: TaskEvent["data"] = null): TaskEvent {
  return { id: nextId++, taskId, type, at: 0, agentId, attempt, data };
}
const task = (id: number, status: string, attempts: number, dependsOn: number[] = []): FinalTask => ({ id, persona: "step", status, attempts, maxAttempts: 5, dependsOn, errorCode: null });
const holders = new Map<string, Holder>([
  ["a", { label: "a", killedAfter: 100 }],
  ["b", { label: "b", cut: { from: 200, to: 300 } }],
  ["c", { label: "c" }],
]);

function judge(tasks: FinalTask[], trails: TaskEvent[][], expected: Expected[] = tasks.map(() => "completed")) {
  return judgeMultiHost({
    tasks,
    events: new Map(tasks.map((t, i) => [t.id, trails[i]!])),
    expected: new Map(tasks.map((t, i) => [t.id, expected[i]!])),
    holders,
  });
}

/** claimed by `holder`, collected at event id `reapAt`, then claimed and completed by c. */
function reapedTrail(taskId: number, holder: string, claimAt: number, reapAt: number): TaskEvent[] {
  nextId = claimAt;
  const claim = ev(taskId, "task:claimed", holder, 1);
  nextId = reapAt;
  return [claim, ev(taskId, "lease:expired", holder, 1), ev(taskId, "task:retrying", holder, 1, { error: { code: "LEASE_EXPIRED" } }), ev(taskId, "task:claimed", "c", 2), ev(taskId, "task:completed", "c", 2)];
}

describe("the multi-host verdict", () => {
  it("passes a clean trail: claimed, completed once, dependency first", () => {
    nextId = 1;
    const first = [ev(1, "task:enqueued", null, null), ev(1, "task:claimed", "c", 1), ev(1, "task:completed", "c", 1)];
    const second = [ev(2, "task:enqueued", null, null), ev(2, "task:claimed", "c", 1), ev(2, "task:completed", "c", 1)];
    const v = judge([task(1, "completed", 1), task(2, "completed", 1, [1])], [first, second]);
    expect([...v.lost, ...v.duplicates, ...v.liveReaps, ...v.lateWritesAccepted, ...v.violations]).toEqual([]);
    expect(v.figures.completedByHolder).toEqual({ c: 2 });
  });

  it("accepts collecting a killed holder's lease after the kill, not before", () => {
    expect(judge([task(1, "completed", 2)], [reapedTrail(1, "a", 50, 150)]).liveReaps).toEqual([]);
    expect(judge([task(1, "completed", 2)], [reapedTrail(1, "a", 50, 90)]).liveReaps).toHaveLength(1);
  });

  it("accepts collecting a cut holder's lease claimed before the restore and collected after the cut", () => {
    expect(judge([task(1, "completed", 2)], [reapedTrail(1, "b", 150, 250)]).liveReaps).toEqual([]);
    // Collected before the cut, or a lease claimed after the link came back: a live, connected holder.
    expect(judge([task(1, "completed", 2)], [reapedTrail(1, "b", 150, 180)]).liveReaps).toHaveLength(1);
    expect(judge([task(1, "completed", 2)], [reapedTrail(1, "b", 310, 400)]).liveReaps).toHaveLength(1);
  });

  it("reports any collection of a holder never killed or cut", () => {
    const v = judge([task(1, "completed", 2)], [reapedTrail(1, "c", 10, 20)]);
    expect(v.liveReaps).toEqual([expect.stringContaining("never killed or cut")]);
  });

  it("reports a late write of a collected attempt that was accepted, and a second completion", () => {
    const trail = reapedTrail(1, "b", 150, 250);
    trail.push(ev(1, "task:completed", "b", 1));
    const v = judge([task(1, "completed", 2)], [trail]);
    expect(v.lateWritesAccepted).toEqual([expect.stringContaining("task:completed")]);
    expect(v.duplicates).toHaveLength(1);
  });

  it("takes the cut holder's own new claim of a reaped task (the same attempt number: a reaped attempt is not counted) for a new attempt, not a late write", () => {
    nextId = 150;
    const claim = ev(1, "task:claimed", "b", 1);
    nextId = 250;
    const trail = [claim, ev(1, "lease:expired", "b", 1), ev(1, "task:retrying", "b", 1, { error: { code: "LEASE_EXPIRED" }, counted: false, leasesLost: 1 })];
    nextId = 350;
    trail.push(ev(1, "lease:given-back", "b", null), ev(1, "task:claimed", "b", 1), ev(1, "task:completed", "b", 1));
    const v = judge([task(1, "completed", 1)], [trail]);
    expect([...v.lost, ...v.duplicates, ...v.liveReaps, ...v.lateWritesAccepted, ...v.violations]).toEqual([]);
  });

  it("reports a task left open, and one that ended other than its policy says", () => {
    nextId = 1;
    const open = [ev(1, "task:enqueued", null, null)];
    const failed = [ev(2, "task:claimed", "c", 1), ev(2, "task:failed", "c", 1, { error: { code: "ADAPTER_FAILED" } })];
    const v = judge([task(1, "pending", 0), { ...task(2, "failed", 1), errorCode: "ADAPTER_FAILED" }], [open, failed]);
    expect(v.lost).toEqual([expect.stringContaining("task 1 (step): pending")]);
    expect(v.violations).toEqual([expect.stringContaining("ended failed (ADAPTER_FAILED), the policy says completed")]);
  });

  it("reports a claim before a dependency completed", () => {
    nextId = 1;
    const dep = [ev(1, "task:claimed", "c", 1)];
    const later = [ev(2, "task:claimed", "c", 1), ev(2, "task:completed", "c", 1)];
    dep.push(ev(1, "task:completed", "c", 1));
    const v = judge([task(1, "completed", 1), task(2, "completed", 1, [1])], [dep, later]);
    expect(v.violations).toEqual([expect.stringContaining("claimed (event 2) before dependency 1 completed")]);
  });
});
