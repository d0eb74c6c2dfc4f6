import { describe, expect, it } from "vitest";
import { parsePlan } from "../../src/adapters/agent/plan.js";
import { RosterError } from "../../src/errors.js";

const plan = {
  result: "Two parts, then a review.",
  tasks: [
    { ref: "api", persona: "implementer", title: "API" },
    { ref: "ui", persona: "implementer", title: "UI", description: "the page" },
    { ref: "review", persona: "reviewer", title: "Review", dependsOn: ["api", "ui"] },
  ],
};

describe("planner answers", () => {
  it("turns a JSON plan in a fenced block after prose into tasks with dependencies", () => {
    const parsed = parsePlan(`I looked at the repo.\n\n\`\`\`json\n${JSON.stringify(plan, null, 2)}\n\`\`\`\nGood luck.`);
    expect(parsed.summary).toBe("Two parts, then a review.");
    expect(parsed.tasks.map((t) => [t.ref, t.dependsOn ?? []])).toEqual([
      ["api", []],
      ["ui", []],
      ["review", ["api", "ui"]],
    ]);
  });

  it("accepts a bare JSON answer and uses the prose as summary when result is missing", () => {
    expect(parsePlan(JSON.stringify({ tasks: plan.tasks })).tasks).toHaveLength(3);
    expect(parsePlan(`Plan follows: ${JSON.stringify({ tasks: plan.tasks })}`).summary).toBe("Plan follows:");
  });

  it("rejects a plan with a dependency cycle, naming the cycle", () => {
    const cyclic = { tasks: [
      { ref: "a", persona: "p", title: "A", dependsOn: ["b"] },
      { ref: "b", persona: "p", title: "B", dependsOn: ["a"] },
    ] };
    expect(() => parsePlan(JSON.stringify(cyclic))).toThrow(/dependency cycle a -> b -> a/);
  });

  it("rejects an answer without a plan as invalid output that may be retried", () => {
    let caught: unknown;
    try {
      parsePlan("I could not decide.");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RosterError);
    expect((caught as RosterError).code).toBe("ADAPTER_OUTPUT_INVALID");
    expect((caught as RosterError).retryable).toBe(true);
  });

  it("names the offending task of a malformed plan", () => {
    expect(() => parsePlan(JSON.stringify({ tasks: [{ ref: "x", persona: "p", title: "" }] }))).toThrow(/tasks\[0\] \(ref "x"\)\.title/);
  });
});
