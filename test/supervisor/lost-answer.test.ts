import { afterEach, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import type { Store } from "../../src/store/index.js";
import type { SupervisorEventMap } from "../../src/supervisor/events.js";
import { harness, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/**
 * A settlement whose commit went through but whose answer was lost (the database paused or cut
 * right after the commit: DATABASE_IO), tried again and refused LEASE_LOST, since the first try
 * had ended the lease. Its attempt is reported as what was recorded, not as a lost lease: the
 * supervisor logged "lease lost: result discarded" for a completion it had committed itself,
 * and its metrics and outcome listeners heard the same. The real store commits the first try;
 * only its answer is replaced by the error a lost connection gives.
 */
describe("a settlement whose answer was lost", () => {
  it("is reported as the completion the first try committed, recorded once", async () => {
    h = await harness([{ id: "echoer", adapter: { kind: "echo" } }]);
    const tasks = h.store.tasks as Store["tasks"] & { settleAndClaim?: unknown };
    // Settled alone (SQLite would join the next claims to it), so the lost answer is the settle's.
    Object.defineProperty(tasks, "settleAndClaim", { value: undefined, configurable: true });
    const settle = tasks.settle.bind(tasks);
    let lost = false;
    tasks.settle = async (params) => {
      const results = await settle(params);
      if (!lost) {
        lost = true;
        throw new RosterError("DATABASE_IO", "lost the connection to the database (the answer of a commit that went through)");
      }
      return results;
    };
    const finished: Array<SupervisorEventMap["task:run-finished"]> = [];
    const done = new Promise<void>((resolve) => h!.supervisor.events.on("task:run-finished", (e) => (finished.push(e), resolve())));
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "echoer", title: "answer lost", payload: { n: 1 } }], now: Date.now() });
    await h.supervisor.start();
    await done;
    expect(lost).toBe(true);
    expect(finished.map((e) => [e.taskId, e.outcome])).toEqual([[ids[0], "completed"]]);
    const task = await h.store.tasks.get({ taskId: ids[0]!, eventLimit: 100 });
    expect(task).toMatchObject({ status: "completed", attempts: 1, result: { echo: { n: 1 } } });
    expect(task.events.filter((e) => e.type === "task:completed")).toHaveLength(1);
  });
});
