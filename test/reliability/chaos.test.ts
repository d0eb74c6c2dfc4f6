import { describe, expect, it } from "vitest";
import { newSeed } from "../../bench/chaos/random.js";
import { runChaos } from "../../bench/chaos/run.js";

/**
 * The short crash suite (issue 7): the same runner as `npm run chaos`, with 12
 * SIGKILLs of real supervisor processes on a real database, then `roster start
 * --exit-when-idle` (dist/, so `npm test` builds first). A failure prints the seed:
 * replay it with `npm run chaos -- --kills 12 --tasks 48 --seed S`.
 */
describe("the crash suite, short", () => {
  it("survives 12 kills with every task terminal as its policy says, no duplicate and nothing lost", async () => {
    const seed = newSeed();
    const report = await runChaos({ kills: 12, seed, tasks: 48, maxRunMs: 1_200 });
    const context = `seed ${seed}, kept in ${report.dir}`;
    expect(report.failures, context).toEqual([]);
    expect(report.ok, context).toBe(true);
    // A companion supervisor killed in the last cycle can add one.
    expect(report.kills, context).toBeGreaterThanOrEqual(12);
    expect(report.drained, context).toBe(true);
    expect(report.figures.duplicates, context).toBe(0);
    expect(report.figures.lost, context).toBe(0);
    expect(report.figures.violations, context).toEqual([]);
    // Planners added children; the kills interrupted running attempts, whose leases were collected.
    expect(report.figures.tasks, context).toBeGreaterThan(48);
    expect(report.figures.leaseExpiries, context).toBeGreaterThan(0);
    expect(report.figures.byStatus.completed ?? 0, context).toBeGreaterThan(0);
    expect(report.figures.byStatus.failed ?? 0, context).toBeGreaterThan(0);
  }, 120_000);
});
