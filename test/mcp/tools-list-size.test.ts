import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { connectInProcess } from "./helpers.js";

/**
 * The worker profile's tools/list is sent to every worker agent's model on every
 * session: it must stay small (bench/RESULTS.md `## mcp` records the figure).
 */
const WORKER_TOOLS_LIST_BUDGET_BYTES = 4_608;

describe("tools/list size", () => {
  let db: TestStore;

  beforeEach(async () => {
    db = await openTestStore({ memory: true });
  });

  afterEach(async () => db.close());

  it("keeps the worker profile's tools/list under its byte budget and to the worker tools", async () => {
    const { client, close } = await connectInProcess({ store: db.store, profile: "worker" });
    const list = await client.listTools();
    await close();
    expect(list.tools.map((t) => t.name).sort()).toEqual(
      ["claim_task", "complete_task", "fail_task", "heartbeat", "list_personas", "register_agent", "release_task", "report_progress"],
    );
    expect(Buffer.byteLength(JSON.stringify(list))).toBeLessThan(WORKER_TOOLS_LIST_BUDGET_BYTES);
    for (const tool of list.tools) expect(tool.description!.length).toBeLessThanOrEqual(120);
  });

  it("offers the planner profile no worker tools", async () => {
    const { client, close } = await connectInProcess({ store: db.store, profile: "planner" });
    const names = (await client.listTools()).tools.map((t) => t.name);
    await close();
    expect(names).toContain("create_tasks");
    expect(names).not.toContain("claim_task");
  });
});
