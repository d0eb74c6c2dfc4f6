import { describe, expect, it } from "vitest";
import { bar, renderStatus, statusJson, summarize, type StatusSnapshot } from "../../src/progress/index.js";

const snapshot = (over: Partial<StatusSnapshot> = {}): StatusSnapshot => {
  const counts = over.counts ?? { coder: { completed: 3, failed: 1, in_progress: 1, pending: 5 }, planner: { completed: 2 } };
  return {
    at: 1_700_000_000_000,
    counts,
    personas: summarize(counts),
    running: [
      { id: 7, title: "write the parser", persona: "coder", status: "in_progress", attempt: 2, progress: 0.5, progressMessage: "tests green", assignedAgentId: "a1", startedAt: 1 },
    ],
    ...over,
  };
};

describe("the status summary", () => {
  it("counts completed, failed and cancelled tasks as done out of every task of the persona", () => {
    const [coder] = summarize({ coder: { completed: 3, failed: 1, cancelled: 1, in_progress: 2, claimed: 1, pending: 4, waiting: 2, blocked: 1 } });
    expect(coder).toMatchObject({ persona: "coder", done: 5, total: 15, running: 3, pending: 4, waiting: 2, blocked: 1 });
  });

  it("draws a bar whose filled part is the fraction, clamped to 0..1", () => {
    expect(bar(0.5, 10)).toBe("[█████░░░░░]");
    expect(bar(0.25, 4, true)).toBe("[#---]");
    expect(bar(2, 4, true)).toBe("[####]");
    expect(bar(Number.NaN, 4, true)).toBe("[----]");
  });

  it("renders each persona's done / total with a bar, and each running task's fraction and message", () => {
    const lines = renderStatus(snapshot(), { ascii: true, barWidth: 10 });
    expect(lines[0]).toBe("coder    [####------] 4/10 done  3 completed, 1 failed, 1 running, 5 pending");
    expect(lines[1]).toBe("planner  [##########]  2/2 done  2 completed");
    expect(lines).toContain("running (1):");
    expect(lines.at(-1)).toBe("  #7 coder attempt 2  [#####-----]  50%  write the parser: tests green");
  });

  it("says so when there are no tasks", () => {
    expect(renderStatus(snapshot({ counts: {}, personas: [], running: [] }))).toEqual(["no tasks"]);
  });

  it("cuts every line to the given width", () => {
    const lines = renderStatus(snapshot(), { maxWidth: 30 });
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(30);
  });

  it("gives JSON whose counts map persona to state to number, plus the running tasks", () => {
    const json = statusJson(snapshot());
    expect(json.counts).toEqual({ coder: { completed: 3, failed: 1, in_progress: 1, pending: 5 }, planner: { completed: 2 } });
    expect(json.running[0]).toMatchObject({ id: 7, progress: 0.5, progressMessage: "tests green" });
    expect(json.at).toBe("2023-11-14T22:13:20.000Z");
  });
});
