import { RENEW_ALL_SQL, RENEW_SOME_SQL } from "./agents.js";
import { COMPLETE_DEPENDENCIES_SQL, DECREMENT_DEPENDENTS_MANY_SQL, READIED_AFTER_SQL } from "./graph.js";
import { OBSERVE_AGENTS_SQL, OBSERVE_LEASES_SQL } from "./maintenance.js";
import { COUNTS_ALL_SQL, NEXT_RUN_ALL_SQL, NEXT_RUN_PERSONA_SQL, OLDEST_READY_SQL, RUNNING_SQL } from "./queries.js";
import { CLAIM_FIRST_SQL, CLAIM_SQL, CLAIMED_DETAILS_SQL } from "./claims.js";
import { COMPLETE_MANY_SQL, COMPLETE_ONE_SQL } from "./completions.js";

/**
 * The statements that run on every supervisor tick, by name, exactly as the store
 * prepares them. The plan tests (test/store/query-plan.test.ts) explain each one
 * against a large database: every one must be an index search, never a table scan.
 */
export const HOT_QUERIES = {
  claim: CLAIM_SQL,
  claimFirst: CLAIM_FIRST_SQL,
  claimedDetails: CLAIMED_DETAILS_SQL,
  heartbeat: RENEW_ALL_SQL,
  renewSome: RENEW_SOME_SQL,
  completeMany: COMPLETE_MANY_SQL,
  completeOne: COMPLETE_ONE_SQL,
  decrementDependentsMany: DECREMENT_DEPENDENTS_MANY_SQL,
  readiedAfter: READIED_AFTER_SQL,
  observeLeases: OBSERVE_LEASES_SQL,
  observeAgents: OBSERVE_AGENTS_SQL,
  counts: COUNTS_ALL_SQL,
  nextRunAt: NEXT_RUN_ALL_SQL,
  nextRunAtPersona: NEXT_RUN_PERSONA_SQL,
  completeDependencies: COMPLETE_DEPENDENCIES_SQL,
  running: RUNNING_SQL,
  oldestReady: OLDEST_READY_SQL,
} as const;

export type HotQueryName = keyof typeof HOT_QUERIES;
