/** The scenarios, in the order `npm run bench` runs them and RESULTS.md lists them. */
import { dagScenario } from "./dag.js";
import { peersScenario } from "./peers.js";
import type { Scenario } from "./support/types.js";

export const SCENARIOS: Scenario[] = [peersScenario, dagScenario];
