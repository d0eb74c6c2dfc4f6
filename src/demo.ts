import { RosterError } from "./errors.js";
import type { Persona } from "./personas/schema.js";
import type { Store } from "./store/index.js";

/**
 * The demo goal `roster start --demo` seeds into an empty database: one planner
 * task whose plan shows planning (a sub-planner makes it three levels deep),
 * dependencies (reviewers wait for implementers), retries (the bundled
 * implementer is `flaky`: each task fails its first attempt) and progress (the
 * implementers report it while they work).
 */
export const DEMO_GOAL =
  "Ship a tiny URL shortener: design the HTTP API, build the storage layer, build the redirect service and write the user guide";
export const DEMO_PERSONAS = ["planner", "implementer", "reviewer"] as const;
/**
 * Simulated work per implementer attempt, in ms: long enough for the live panel's
 * progress bars to move (each attempt reports 1/4, 2/4, 3/4) and for the whole
 * demo to take about 13 s (each implementer fails its first attempt, then runs again).
 */
export const DEMO_WORK_MS = 6_000;

/** Seeds the demo goal when the database holds no task at all; returns its id, or null when it did nothing. */
export async function seedDemo(store: Store, options: { personas: readonly Persona[]; now: number }): Promise<number | null> {
  const missing = DEMO_PERSONAS.filter((id) => !options.personas.some((p) => p.id === id));
  if (missing.length > 0) {
    throw new RosterError("PERSONA_NOT_FOUND", `--demo: the demo needs the personas ${DEMO_PERSONAS.join(", ")}; missing: ${missing.join(", ")}`, {
      details: { missing },
    });
  }
  const counts = await store.tasks.counts();
  if (Object.keys(counts).length > 0) return null;
  const { ids } = await store.tasks.enqueue({
    tasks: [
      {
        persona: "planner",
        title: "Demo goal: ship a tiny URL shortener",
        description: DEMO_GOAL,
        payload: { goal: DEMO_GOAL, implementerPayload: { ms: DEMO_WORK_MS } },
      },
    ],
    createdBy: "demo",
    now: options.now,
  });
  return ids[0] ?? null;
}
