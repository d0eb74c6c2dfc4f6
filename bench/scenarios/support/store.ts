/** A roster store on a fresh file with one benchmark persona, for the store-level scenarios. */
import { openStore, type PersonaUpsert, type Store, type StoreOptions } from "../../../src/store/index.js";

export const BENCH_PERSONA = "bench";

export function benchPersona(overrides: Record<string, unknown> = {}): PersonaUpsert {
  return {
    id: BENCH_PERSONA,
    name: "Bench",
    definition: "Runs benchmark no-op tasks.",
    config: {
      id: BENCH_PERSONA,
      name: "Bench",
      adapter: { kind: "echo" },
      concurrency: 256,
      leaseMs: 30_000,
      timeoutMs: 60_000,
      retry: { maxAttempts: 3, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 },
      ...overrides,
    },
    sourcePath: null,
  };
}

export async function openBenchStore(options: StoreOptions, persona: PersonaUpsert = benchPersona()): Promise<Store> {
  const store = await openStore(options);
  await store.personas.sync({ personas: [persona], now: Date.now() });
  return store;
}
