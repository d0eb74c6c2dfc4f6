import { describe, expect, it } from "vitest";
import { newSeed } from "../../bench/chaos/random.js";
import { runChaos } from "../../bench/chaos/run.js";

/**
 * The short crash suite (issues 7 and 12): the same runner as `npm run chaos`, with 12
 * SIGKILLs of real supervisor processes on a real database and one fault of each
 * kind of issue 12 (SIGSTOP, cancel + retry, hang, write lock, full disk, killed
 * shell leaders, skewed clock), then `roster start
 * --exit-when-idle` (dist/, so `npm test` builds first). A failure prints the seed:
 * replay it with `npm run chaos -- --kills 12 --tasks 48 --seed S`.
 */
describe("the crash suite, short", () => {
  it("survives 12 kills with every task terminal as its policy says, no duplicate and nothing lost", async () => {
    const seed = newSeed();
    // Short faults: a lock of at most 2.5 s, a full disk of at most 1.5 s; one of each kind comes first.
    const report = await runChaos({ kills: 12, seed, tasks: 48, maxRunMs: 1_200, faultRate: 0, maxLockMs: 2_500, maxDiskMs: 1_500, maxPostFaultMs: 1_200 });
    const context = `seed ${seed}, kept in ${report.dir}`;
    expect(report.failures, context).toEqual([]);
    expect(report.ok, context).toBe(true);
    // A companion supervisor killed in the last cycle can add one.
    expect(report.kills, context).toBeGreaterThanOrEqual(12);
    expect(report.drained, context).toBe(true);
    expect(report.figures.duplicates, context).toBe(0);
    expect(report.figures.lost, context).toBe(0);
    expect(report.figures.violations, context).toEqual([]);
    expect(report.figures.wronglyFailed, context).toEqual([]);
    expect(report.figures.stalls, context).toEqual([]);
    // Issue 12: one fault of each kind ran (the full disk only where a tmpfs can be mounted).
    for (const kind of ["stop", "cancel", "hang", "lock", "leader", "skew"]) expect(report.faults[kind] ?? 0, `${kind}; ${context}`).toBeGreaterThanOrEqual(1);
    // Planners added children; the kills interrupted running attempts, whose leases were collected.
    expect(report.figures.tasks, context).toBeGreaterThan(48);
    expect(report.figures.leaseExpiries, context).toBeGreaterThan(0);
    expect(report.figures.byStatus.completed ?? 0, context).toBeGreaterThan(0);
    expect(report.figures.byStatus.failed ?? 0, context).toBeGreaterThan(0);
  }, 180_000);
});
