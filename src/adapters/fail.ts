import { RosterError } from "../errors.js";
import type { Adapter, AdapterPersona } from "./types.js";
import { payloadBool } from "./work.js";

/**
 * `fail`: every attempt fails with ADAPTER_FAILED. Retryable unless
 * `payload.retryable` (else the persona's `adapter.retryable`) is false.
 */
export function createAdapter(persona: AdapterPersona): Adapter {
  const fallback = persona.adapter.kind === "fail" ? (persona.adapter.retryable ?? true) : true;
  return {
    run(task) {
      const retryable = payloadBool(task.payload, "retryable", fallback);
      throw new RosterError("ADAPTER_FAILED", `task ${task.id} failed on purpose (attempt ${task.attempt})`, { retryable });
    },
  };
}
