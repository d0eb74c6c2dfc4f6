import { setTimeout as sleep } from "node:timers/promises";
import { TREE_KILL_GRACE_MS_DEFAULT } from "../adapters/watchdog.js";
import type { LeaseRef, Store } from "../store/index.js";

/** How long an exit at once waits for its one write before leaving the leases to the reaper, in ms. */
export const EXIT_RELEASE_WITHIN_MS = 2_000;
/**
 * How long the tasks given back at an exit at once are held from every supervisor, in ms: the
 * watchdog ends their process trees (SIGTERM, then SIGKILL after TREE_KILL_GRACE_MS_DEFAULT)
 * once this process is gone, and a new attempt must not start beside the old one's tree.
 */
export const EXIT_RELEASE_HOLD_MS = TREE_KILL_GRACE_MS_DEFAULT + 1_000;

/**
 * A supervisor told to exit at once (a second SIGINT/SIGTERM during its graceful stop,
 * src/main.ts) gives back the leases it still holds in one write: released uncounted and
 * unbounded, as its graceful stop would (docs/ARCHITECTURE.md rule 10: the operator's act, not
 * the tasks'), each held back EXIT_RELEASE_HOLD_MS. Left to the reaper, each would count as a
 * lost lease, and a task whose supervisor was stopped this way three times failed
 * (LEASE_EXPIRED) having done nothing. Bounded by `withinMs`: a database that does not answer
 * in time leaves them to the reaper, as before. Fenced by each lease's token (a lease its
 * graceful stop already settled is not touched). Returns how many were given back.
 */
export async function releaseAtExit(store: Store, leases: readonly LeaseRef[], now: number, withinMs = EXIT_RELEASE_WITHIN_MS): Promise<number> {
  if (leases.length === 0) return 0;
  const write = store.tasks
    .settle({
      settlements: leases.map((lease) => ({ kind: "release" as const, ...lease, reason: "supervisor exited at once (a second signal)", delayMs: EXIT_RELEASE_HOLD_MS })),
      now,
    })
    .then((results) => results.filter((r) => r.ok).length);
  const late = sleep(withinMs, 0, { ref: false });
  return Promise.race([write, late]);
}
