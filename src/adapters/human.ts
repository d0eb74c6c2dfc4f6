import { RosterError } from "../errors.js";
import type { Adapter, AdapterPersona } from "./types.js";

/**
 * The `human` adapter kind: a person approves or rejects the persona's tasks
 * (`roster approve|reject`). They wait in awaiting_approval and never enter the
 * claim index, so nothing runs them; a worker that is handed one anyway (a bug,
 * or a task claimed by hand) fails it without retry rather than approving it.
 */
export function createAdapter(persona: AdapterPersona): Adapter {
  return {
    run: (task) => {
      throw new RosterError("ADAPTER_FAILED", `task ${task.id} of persona "${persona.id}" is approved by a person, never run by a worker`, { retryable: false });
    },
  };
}
