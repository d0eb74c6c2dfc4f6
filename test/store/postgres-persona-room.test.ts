import { describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * A persona's concurrency on PostgreSQL (docs/economics.md, "A persona's concurrency"): hosts
 * claim at once, under READ COMMITTED, so the claim counts the persona's leased tasks under its
 * advisory lock on a snapshot taken after the lock (roster_persona_room, migrations/postgres/0008).
 * Counted on the claim statement's own snapshot, claims racing on several hosts would each see
 * the room before the others' commits and together lease more than the limit.
 */
const server = await usePostgres();
const HOSTS = 6;

describe.skipIf(!server.available)("postgres: a persona's concurrency under claims racing from several hosts", () => {
  const admin = useAdmin(server);

  it("leases no more than the concurrency, whoever claims and however the claims interleave; the rest stay pending", async () => {
    const schema = `room${Date.now().toString(36)}`;
    const url = await admin.schema(schema);
    const stores: Store[] = [];
    try {
      for (let i = 0; i < HOSTS; i++) stores.push(await openStore({ path: url, now: T0 }));
      await syncTestPersonas(stores[0]!, T0);
      // reviewer: concurrency 2 (test/helpers/personas.ts).
      const { ids } = await stores[0]!.tasks.enqueue({ tasks: Array.from({ length: 12 }, (_, i) => ({ persona: "reviewer", title: `r${i}` })), now: T0 });
      for (let round = 0; round < 3; round++) {
        const claims = await Promise.all(
          stores.flatMap((store, host) => [
            store.tasks.claim({ persona: "reviewer", agentId: `host-${host}`, limit: 2, leaseMs: 30_000, now: T0 }),
            store.tasks.claimById({ taskId: ids[(host + round * HOSTS) % ids.length]!, agentId: `mcp-${host}`, now: T0 }).then((t) => (t === null ? [] : [t])),
          ]),
        );
        const leased = claims.flat();
        expect(leased).toHaveLength(2);
        const statuses = await Promise.all(ids.map(async (taskId) => (await stores[0]!.tasks.get({ taskId, eventLimit: 0 })).status));
        expect(statuses.filter((s) => s === "claimed")).toHaveLength(2);
        expect(statuses.filter((s) => s === "pending")).toHaveLength(ids.length - 2 * (round + 1));
        // Both settle: the next round has the two slots again.
        for (const t of leased) await stores[0]!.tasks.completeIfLeased({ taskId: t.id, leaseToken: t.leaseToken, result: round, now: T0 });
      }
    } finally {
      for (const store of stores) await store.close();
    }
  });
});
