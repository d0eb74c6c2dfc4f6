/** The scenarios, in the order `npm run bench` runs them and RESULTS.md lists them. */
import { concurrencyScenario } from "./concurrency.js";
import { dagScenario } from "./dag.js";
import { economicsScenario } from "./economics.js";
import { heartbeatScenario } from "./heartbeat.js";
import { latencyScenario } from "./latency.js";
import { peersScenario } from "./peers.js";
import { pgscaleScenario } from "./pgscale.js";
import { postgresScenario } from "./postgres.js";
import { soakScenario } from "./soak.js";
import { storeScenario } from "./store.js";
import { throughputScenario } from "./throughput.js";
import type { Scenario } from "./support/types.js";

export const SCENARIOS: Scenario[] = [
  storeScenario,
  throughputScenario,
  peersScenario,
  latencyScenario,
  concurrencyScenario,
  heartbeatScenario,
  dagScenario,
  soakScenario,
  economicsScenario,
  postgresScenario,
  pgscaleScenario,
];
