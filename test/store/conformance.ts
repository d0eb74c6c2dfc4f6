import { afterEach, beforeEach, describe } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";
import { agentRules } from "./conformance/agents.js";
import { auditRules } from "./conformance/audit.js";
import { badInputRules } from "./conformance/bad-input.js";
import { claimRules } from "./conformance/claim.js";
import { decompositionRules } from "./conformance/decomposition.js";
import { economicsRules } from "./conformance/economics.js";
import { enqueueRules } from "./conformance/enqueue.js";
import { fencingRules } from "./conformance/fencing.js";
import { graphRules } from "./conformance/graph.js";
import { humanRules } from "./conformance/humans.js";
import { personaRules } from "./conformance/personas.js";
import { queryRules } from "./conformance/queries.js";
import { readinessRules } from "./conformance/readiness.js";
import { reaperRules } from "./conformance/reaper.js";
import { retryRules } from "./conformance/retry.js";
import type { Ctx, StoreFactory } from "./conformance/support.js";

export type { StoreFactory, StoreHarness } from "./conformance/support.js";

/** The suite's rule groups, by name, in the order they run. */
export const RULE_GROUPS = [
  "enqueue",
  "readiness",
  "claim",
  "fencing",
  "agents",
  "reaper",
  "retry",
  "decomposition",
  "audit",
  "badInput",
  "graph",
  "queries",
  "personas",
  "humans",
  "economics",
] as const;
export type RuleGroup = (typeof RULE_GROUPS)[number];

export interface ConformanceOptions {
  /**
   * Run only these groups (default: all). For an implementation still being built:
   * the groups left out must be named, with the issue that builds them, where it is called.
   */
  groups?: readonly RuleGroup[];
}

/**
 * The store's conformance suite: every rule of docs/ARCHITECTURE.md that lives in the
 * database, written against the Store interface only. Each implementation runs it
 * with its own factory (test/store/sqlite.test.ts; a PostgreSQL store would add
 * postgres.test.ts). Each test gets a fresh store with the test personas synced
 * and a ManualClock; nothing is shared between tests.
 */
export function describeStoreConformance(name: string, factory: StoreFactory, options: ConformanceOptions = {}): void {
  const runs = (group: RuleGroup): boolean => options.groups === undefined || options.groups.includes(group);
  describe(`${name}: store conformance`, () => {
    let ctx: Ctx | null = null;

    beforeEach(async () => {
      const clock = new ManualClock(T0);
      const h = await factory({ now: clock.now(), monotonic: () => clock.now() });
      await syncTestPersonas(h.store, clock.now());
      ctx = { h, store: h.store, clock };
    });

    afterEach(async () => {
      await ctx?.h.close();
      ctx = null;
    });

    const get = (): Ctx => {
      if (ctx === null) throw new Error("conformance context used outside a test");
      return ctx;
    };

    if (runs("enqueue")) describe("rule 1: atomic enqueue", () => enqueueRules(get));
    if (runs("readiness")) describe("rule 2: readiness", () => readinessRules(get));
    if (runs("claim")) describe("rule 3: claim", () => claimRules(get));
    if (runs("fencing")) describe("rule 4: fencing", () => fencingRules(get));
    if (runs("agents")) describe("rule 5: heartbeats and agents", () => agentRules(get));
    if (runs("reaper")) describe("rule 6: reaper", () => reaperRules(get));
    if (runs("retry")) describe("rule 7: retry policy", () => retryRules(get));
    if (runs("decomposition")) describe("rule 8: decomposition and batched settlement", () => decompositionRules(get));
    if (runs("audit")) describe("rule 9: audit", () => auditRules(get));
    if (runs("badInput")) describe("rule 11: bad input", () => badInputRules(get));
    if (runs("graph")) describe("task states and dependencies", () => graphRules(get));
    if (runs("queries")) describe("reads", () => queryRules(get));
    if (runs("personas")) describe("personas", () => personaRules(get));
    if (runs("humans")) describe("humans in the loop, schedules", () => humanRules(get));
    if (runs("economics")) describe("rule 15: usage, budgets and limits", () => economicsRules(get));
  });
}
