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

const GROUP_TITLES: Record<RuleGroup, string> = {
  enqueue: "rule 1: atomic enqueue",
  readiness: "rule 2: readiness",
  claim: "rule 3: claim",
  fencing: "rule 4: fencing",
  agents: "rule 5: heartbeats and agents",
  reaper: "rule 6: reaper",
  retry: "rule 7: retry policy",
  decomposition: "rule 8: decomposition and batched settlement",
  audit: "rule 9: audit",
  badInput: "rule 11: bad input",
  graph: "task states and dependencies",
  queries: "reads",
  personas: "personas",
  humans: "humans in the loop, schedules",
  economics: "rule 15: usage, budgets and limits",
};

export interface ConformanceOptions {
  /**
   * Run only these groups (default: all). For an implementation still being built:
   * the groups left out must be named, with the issue that builds them, where it is called.
   */
  groups?: readonly RuleGroup[];
  /**
   * Groups run in part: only the tests whose names match `run`; the others are skipped
   * at run time with `reason` (which must name the issue that builds them).
   */
  partial?: Partial<Record<RuleGroup, { run: RegExp; reason: string }>>;
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

    beforeEach(async (context) => {
      const suite = context.task.suite?.name;
      const group = RULE_GROUPS.find((g) => GROUP_TITLES[g] === suite);
      const part = group === undefined ? undefined : options.partial?.[group];
      if (part !== undefined && !part.run.test(context.task.name)) {
        context.skip(part.reason);
        return;
      }
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

    if (runs("enqueue")) describe(GROUP_TITLES.enqueue, () => enqueueRules(get));
    if (runs("readiness")) describe(GROUP_TITLES.readiness, () => readinessRules(get));
    if (runs("claim")) describe(GROUP_TITLES.claim, () => claimRules(get));
    if (runs("fencing")) describe(GROUP_TITLES.fencing, () => fencingRules(get));
    if (runs("agents")) describe(GROUP_TITLES.agents, () => agentRules(get));
    if (runs("reaper")) describe(GROUP_TITLES.reaper, () => reaperRules(get));
    if (runs("retry")) describe(GROUP_TITLES.retry, () => retryRules(get));
    if (runs("decomposition")) describe(GROUP_TITLES.decomposition, () => decompositionRules(get));
    if (runs("audit")) describe(GROUP_TITLES.audit, () => auditRules(get));
    if (runs("badInput")) describe(GROUP_TITLES.badInput, () => badInputRules(get));
    if (runs("graph")) describe(GROUP_TITLES.graph, () => graphRules(get));
    if (runs("queries")) describe(GROUP_TITLES.queries, () => queryRules(get));
    if (runs("personas")) describe(GROUP_TITLES.personas, () => personaRules(get));
    if (runs("humans")) describe(GROUP_TITLES.humans, () => humanRules(get));
    if (runs("economics")) describe(GROUP_TITLES.economics, () => economicsRules(get));
  });
}
