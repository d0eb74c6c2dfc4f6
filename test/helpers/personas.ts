import { loadPersonaDir, toPersonaUpsert } from "../../src/personas/load.js";
import type { PersonaUpsert, Store } from "../../src/store/index.js";

/**
 * Personas the store tests use: known leases and retry policies, so backoff and
 * expiry are exact under a ManualClock. Shaped like validated front matter.
 */
export const TEST_LEASE_MS = 30_000;

export const TEST_PERSONAS: PersonaUpsert[] = [
  {
    id: "worker",
    name: "Worker",
    definition: "Does the work.",
    config: {
      id: "worker",
      name: "Worker",
      adapter: { kind: "echo" },
      // Room for the claim tests' batches: a persona's concurrency is held by the store, across claimants.
      concurrency: 64,
      leaseMs: TEST_LEASE_MS,
      timeoutMs: 60_000,
      retry: { maxAttempts: 3, backoff: "exponential", baseMs: 1_000, maxMs: 60_000, jitter: 0.5 },
    },
    sourcePath: null,
  },
  {
    id: "reviewer",
    name: "Reviewer",
    definition: "Reviews the work.",
    config: {
      id: "reviewer",
      name: "Reviewer",
      adapter: { kind: "echo" },
      concurrency: 2,
      leaseMs: 10_000,
      timeoutMs: 60_000,
      retry: { maxAttempts: 2, backoff: "fixed", baseMs: 500, maxMs: 500, jitter: 0 },
    },
    sourcePath: null,
  },
  {
    id: "planner",
    name: "Planner",
    definition: "Breaks goals into tasks.",
    config: {
      id: "planner",
      name: "Planner",
      adapter: { kind: "planner" },
      concurrency: 1,
      leaseMs: TEST_LEASE_MS,
      timeoutMs: 60_000,
      retry: { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 },
    },
    sourcePath: null,
  },
];

export async function syncTestPersonas(store: Store, now: number, personas: PersonaUpsert[] = TEST_PERSONAS): Promise<void> {
  await store.personas.sync({ personas, now });
}

/** Syncs the persona files of `dir` into `store`, as `roster init` does with its folder. */
export async function syncPersonaFolder(store: Store, dir: string, now = Date.now()): Promise<void> {
  await store.personas.sync({ personas: loadPersonaDir(dir).map(toPersonaUpsert), now });
}
