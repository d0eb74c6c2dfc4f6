import type { Adapter, AdapterPersona } from "./types.js";
import { payloadInt, simulateWork } from "./work.js";

/** Milliseconds when neither the payload nor the persona says. */
export const SLEEP_MS_DEFAULT = 1_000;

/**
 * `sleep`: waits `payload.ms` (else the persona's `adapter.ms`, else 1 s) without
 * using CPU, and stops as soon as ctx.signal fires. The I/O-bound task of tests
 * and benchmarks.
 */
export function createAdapter(persona: AdapterPersona): Adapter {
  const fallback = persona.adapter.kind === "sleep" ? (persona.adapter.ms ?? SLEEP_MS_DEFAULT) : SLEEP_MS_DEFAULT;
  return {
    async run(task, ctx) {
      const ms = payloadInt(task.payload, "ms", fallback);
      await simulateWork(ms, ctx, 1);
      return { sleptMs: ms };
    },
  };
}
