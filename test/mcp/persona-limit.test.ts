import { afterEach, describe, expect, it } from "vitest";
import type { TaskEvent } from "../../src/store/index.js";
import { finished, harness, type Harness } from "../supervisor/helpers.js";
import { call, requireBuild, spawnMcpClient, until, type SpawnedClient } from "./helpers.js";

const ENDS = new Set(["task:completed", "task:retrying", "task:failed", "task:released", "task:cancelled", "task:parked"]);

/** The most tasks leased at once, walking every task's audit trail in commit order (event ids). */
function mostLeasedAtOnce(events: TaskEvent[]): number {
  let leased = 0;
  let most = 0;
  for (const e of [...events].sort((a, b) => a.id - b.id)) {
    if (e.type === "task:claimed") most = Math.max(most, ++leased);
    else if (ENDS.has(e.type)) leased--;
  }
  return most;
}

let h: Harness | null = null;
let agent: SpawnedClient | null = null;
afterEach(async () => {
  await agent?.close();
  agent = null;
  await h?.close();
  h = null;
});

/**
 * A persona's concurrency counts every claimant (docs/ARCHITECTURE.md rule 15): a supervisor
 * beside an MCP agent in another process never runs more of the persona at once than its limit.
 * The supervisor used to count only its own attempts, so with the agent holding one it ran two more.
 */
describe("a persona's concurrency, shared by a supervisor and an MCP agent in another process", () => {
  it("holds: with the agent holding one slot the supervisor runs one at a time, and all complete", async () => {
    requireBuild();
    h = await harness([{ id: "coder", adapter: { kind: "sleep", ms: 300 }, concurrency: 2 }]);
    const { ids } = await h.store.tasks.enqueue({ tasks: Array.from({ length: 5 }, (_, i) => ({ persona: "coder", title: `t${i}` })), now: Date.now() });
    agent = await spawnMcpClient({ db: h.dbPath, profile: "worker", name: "outside-agent" });
    const held = await call(agent.client, "claim_task", { persona: "coder" });
    expect(held.task.id).toBe(ids[0]);

    const four = finished(h.supervisor.events, 4, (e) => e.outcome === "completed");
    await h.supervisor.start();
    // While the agent holds its task the supervisor has one slot of the two.
    await four;
    const whileHeld = await Promise.all(ids.map(async (taskId) => (await h!.store.tasks.get({ taskId, eventLimit: 0 })).status));
    expect(whileHeld).toEqual(["in_progress", "completed", "completed", "completed", "completed"]);
    await call(agent.client, "complete_task", { taskId: ids[0], leaseToken: held.leaseToken, result: "done outside" });
    await until(async () => (await h!.store.tasks.get({ taskId: ids[0]!, eventLimit: 0 })).status === "completed", "the agent's completion");

    const trails = await Promise.all(ids.map((taskId) => h!.store.tasks.events({ taskId, limit: 100 })));
    expect(mostLeasedAtOnce(trails.flat())).toBe(2);
    // Each of the supervisor's four ran while the agent's task was leased: the slot was shared, not added.
    const agentClaim = trails[0]!.find((e) => e.type === "task:claimed")!.id;
    const agentEnd = trails[0]!.find((e) => e.type === "task:completed")!.id;
    for (const trail of trails.slice(1)) {
      const claimed = trail.find((e) => e.type === "task:claimed")!;
      expect(claimed.id).toBeGreaterThan(agentClaim);
      expect(claimed.id).toBeLessThan(agentEnd);
      expect(trail.filter((e) => e.type === "task:claimed")).toHaveLength(1);
    }
  });
});
