import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LeaseRef } from "../../src/store/index.js";
import { SupervisorEventBus } from "../../src/supervisor/events.js";
import { LeaseKeeper } from "../../src/supervisor/lease-keeper.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { openTestStore, type TestStore } from "../helpers/store.js";

/**
 * The lease keeper's renewal on a real store, with the attempts held here as a small table: a
 * lease whose attempt settled here while the renewal was on its way is not renewed, and it is
 * not lost either. Before, it was reported lost (the "leases lost at renewal" warning, several
 * times a minute with no fault at all) and its attempt told to abort.
 */
describe("LeaseKeeper", () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore();
    await syncTestPersonas(t.store, t.clock.now());
    await t.store.agents.register({ id: "sup", name: "s", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: t.clock.now() });
  });
  afterEach(async () => t.close());

  it("counts as lost only the leases of attempts still held here", async () => {
    await t.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "settles meanwhile" }, { persona: "worker", title: "cancelled" }, { persona: "worker", title: "held" }], now: t.clock.now() });
    const [settled, cancelled, held] = await t.store.tasks.claim({ persona: "worker", agentId: "sup", limit: 3, now: t.clock.now() });
    const lease = (task: typeof settled): LeaseRef => ({ taskId: task!.id, leaseToken: task!.leaseToken });
    // Read by the renewal while all three ran; by the time it commits, the first has settled here (no longer held) and
    // the second was cancelled by someone else (still held here: really lost).
    const live = new Set([settled!.id, cancelled!.id, held!.id]);
    await t.store.tasks.completeIfLeased({ ...lease(settled), result: { ok: true }, now: t.clock.now() });
    live.delete(settled!.id);
    await t.store.tasks.cancel({ taskId: cancelled!.id, now: t.clock.now() });
    const aborted: number[] = [];
    const events = new SupervisorEventBus();
    const renewals: Array<{ count: number; lost: number }> = [];
    events.on("lease:renewed", (e) => void renewals.push(e));
    const keeper = new LeaseKeeper(
      {
        store: t.store,
        clock: t.clock,
        agentId: "sup",
        events,
        monotonic: () => t.clock.now(),
        attempts: {
          leases: () => [lease(settled), lease(cancelled), lease(held)],
          get: (ref: LeaseRef) => (live.has(ref.taskId) ? ({} as never) : undefined),
          abortLeases: (leases: Iterable<LeaseRef>) => void aborted.push(...[...leases].map((l) => l.taskId)),
          renewed: () => undefined,
          abortOverdue: () => undefined,
          giveBackLost: () => Promise.resolve(),
        },
        connection: { renewed: () => undefined, checkSilence: () => undefined } as never,
        reRegister: () => Promise.resolve(),
        error: (where, error) => {
          throw new Error(`${where}: ${error.message}`);
        },
      },
      1_000,
    );
    await keeper.tick();
    expect(renewals).toEqual([{ count: 1, lost: 1 }]);
    expect(aborted).toEqual([cancelled!.id]);
  });
});
