import { RosterError } from "../errors.js";
import type { DatabaseIdentity, Json } from "../store/types.js";
import type { Adapter, AdapterPersona } from "./types.js";

/**
 * The adapter registry: adapter kind → loader. Worker threads resolve a persona's
 * adapter here, so the table is static (a registration made at runtime in the main
 * thread would not reach the workers). To add a kind, add one row below pointing at
 * the file that implements it; that file exports `createAdapter`.
 *
 * `batchable` marks tasks that settle at once (no I/O, no timers): the pool sends
 * their outcomes back with their message's response, which saves one message per
 * task; the others' outcomes come back one by one as they settle. A function
 * decides per task from its payload.
 */
export interface AdapterEnvironment {
  /** Absolute path of the personas folder; `module` paths may not escape it. */
  personasDir: string;
  /** Allow `module` adapters at absolute paths outside the personas folder. */
  allowAbsoluteModules: boolean;
  /** Largest result, in bytes of JSON. */
  maxPayloadBytes: number;
  /** The database the tasks come from: the agent adapter names its git work after it (src/workspace/owner.ts). */
  database?: DatabaseIdentity;
}

export type AdapterFactory = (persona: AdapterPersona, env: AdapterEnvironment) => Adapter | Promise<Adapter>;

export interface AdapterModule {
  createAdapter: AdapterFactory;
}

export interface AdapterDefinition {
  kind: string;
  batchable: boolean | ((payload: Json | null) => boolean);
  load: () => Promise<AdapterModule>;
}

/** Built-ins that simulate work only when the payload asks for `ms`. */
function withoutWork(payload: Json | null): boolean {
  return !(payload !== null && typeof payload === "object" && !Array.isArray(payload) && typeof payload.ms === "number" && payload.ms > 0);
}

const definitions: AdapterDefinition[] = [
  { kind: "echo", batchable: true, load: () => import("./echo.js") },
  { kind: "fail", batchable: true, load: () => import("./fail.js") },
  { kind: "flaky", batchable: withoutWork, load: () => import("./flaky.js") },
  { kind: "planner", batchable: true, load: () => import("./planner.js") },
  { kind: "sleep", batchable: false, load: () => import("./sleep.js") },
  { kind: "module", batchable: false, load: () => import("./module.js") },
  { kind: "shell", batchable: false, load: () => import("./shell.js") },
  { kind: "agent", batchable: false, load: () => import("./agent/index.js") },
  { kind: "human", batchable: true, load: () => import("./human.js") },
];

export const ADAPTERS: ReadonlyMap<string, AdapterDefinition> = new Map(definitions.map((d) => [d.kind, d]));

export function adapterDefinition(kind: string): AdapterDefinition {
  const definition = ADAPTERS.get(kind);
  if (definition === undefined) {
    throw new RosterError("ADAPTER_NOT_FOUND", `adapter.kind: no adapter "${kind}" is registered (known: ${[...ADAPTERS.keys()].join(", ")})`, {
      retryable: false,
      details: { field: "adapter.kind", kind },
    });
  }
  return definition;
}

/** Whether a task of this adapter kind settles at once and may share a pool message. */
export function isBatchable(kind: string, payload: Json | null): boolean {
  const batchable = ADAPTERS.get(kind)?.batchable ?? false;
  return typeof batchable === "function" ? batchable(payload) : batchable;
}

/** Loads and builds the adapter for a persona; inside a worker thread. */
export async function loadAdapter(persona: AdapterPersona, env: AdapterEnvironment): Promise<Adapter> {
  const definition = adapterDefinition(persona.adapter.kind);
  const module = await definition.load();
  const adapter = await module.createAdapter(persona, env);
  if (adapter === null || typeof adapter !== "object" || typeof adapter.run !== "function") {
    throw new RosterError("ADAPTER_NOT_FOUND", `adapter "${persona.adapter.kind}" of persona "${persona.id}" has no run function`, { retryable: false });
  }
  return adapter;
}
