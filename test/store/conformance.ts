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

/**
 * The store's conformance suite: every rule of docs/ARCHITECTURE.md that lives in the
 * database, written against the Store interface only. Each implementation runs it
 * with its own factory (test/store/sqlite.test.ts; a PostgreSQL store would add
 * postgres.test.ts). Each test gets a fresh store with the test personas synced
 * and a ManualClock; nothing is shared between tests.
 */
export function describeStoreConformance(name: string, factory: StoreFactory): void {
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

    describe("rule 1: atomic enqueue", () => enqueueRules(get));
    describe("rule 2: readiness", () => readinessRules(get));
    describe("rule 3: claim", () => claimRules(get));
    describe("rule 4: fencing", () => fencingRules(get));
    describe("rule 5: heartbeats and agents", () => agentRules(get));
    describe("rule 6: reaper", () => reaperRules(get));
    describe("rule 7: retry policy", () => retryRules(get));
    describe("rule 8: decomposition and batched settlement", () => decompositionRules(get));
    describe("rule 9: audit", () => auditRules(get));
    describe("rule 11: bad input", () => badInputRules(get));
    describe("task states and dependencies", () => graphRules(get));
    describe("reads", () => queryRules(get));
    describe("personas", () => personaRules(get));
    describe("humans in the loop, schedules", () => humanRules(get));
    describe("rule 15: usage, budgets and limits", () => economicsRules(get));
  });
}
