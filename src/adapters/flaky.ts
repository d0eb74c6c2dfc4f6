import { RosterError } from "../errors.js";
import type { Adapter, AdapterPersona } from "./types.js";
import { payloadInt, simulateWork } from "./work.js";

/**
 * `flaky`: fails attempts 1..failTimes (from `payload.failTimes`, else the
 * persona's `adapter.failTimes`, else 1), then succeeds; it decides from
 * task.attempt alone, so it is deterministic. `payload.ms` adds simulated work
 * with progress before the outcome (the demo uses it).
 */
export function createAdapter(persona: AdapterPersona): Adapter {
  const fallback = persona.adapter.kind === "flaky" ? (persona.adapter.failTimes ?? 1) : 1;
  return {
    async run(task, ctx) {
      const failTimes = payloadInt(task.payload, "failTimes", fallback);
      const ms = payloadInt(task.payload, "ms", 0);
      await simulateWork(ms, ctx, 4, "implementing");
      if (task.attempt <= failTimes) {
        throw new RosterError("ADAPTER_FAILED", `flaky: attempt ${task.attempt} of task ${task.id} fails (failTimes ${failTimes})`, { retryable: true });
      }
      return { done: task.title, attempt: task.attempt };
    },
  };
}
