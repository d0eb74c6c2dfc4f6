import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { connectInProcess } from "./helpers.js";

/**
 * The worker profile's tools/list is sent to every worker agent's model on every
 * session: it must stay small (bench/RESULTS.md `## mcp sizes` records the figure),
 * with every parameter described, annotations and output schemas included.
 */
export const WORKER_TOOLS_LIST_BUDGET_BYTES = 4_096;

describe("tools/list size", () => {
  let db: TestStore;

  beforeEach(async () => {
    db = await openTestStore({ memory: true });
  });

  afterEach(async () => db.close());

  it("keeps the worker profile's tools/list under 4,096 bytes and to the worker tools", async () => {
    const { client, close } = await connectInProcess({ store: db.store, profile: "worker" });
    const list = await client.listTools();
    await close();
    expect(list.tools.map((t) => t.name).sort()).toEqual(
      ["claim_task", "complete_task", "fail_task", "heartbeat", "list_personas", "read_task", "register_agent", "release_task", "report_progress", "request_input"],
    );
    const bytes = Buffer.byteLength(JSON.stringify(list));
    console.log(`worker tools/list: ${bytes} bytes`);
    expect(bytes).toBeLessThan(WORKER_TOOLS_LIST_BUDGET_BYTES);
    for (const tool of list.tools) expect(tool.description!.length).toBeLessThanOrEqual(130);
  });

  it("describes every parameter and gives every tool annotations, and an output schema wherever its result has named fields, in every profile", async () => {
    const { client, close } = await connectInProcess({ store: db.store, profile: "all" });
    const list = await client.listTools();
    await close();
    console.log(`all tools/list: ${Buffer.byteLength(JSON.stringify(list))} bytes`);
    const undescribed: string[] = [];
    const walk = (where: string, schema: { properties?: Record<string, unknown>; items?: unknown }) => {
      for (const [name, prop] of Object.entries(schema.properties ?? {})) {
        const p = prop as { description?: string; items?: { properties?: Record<string, unknown> } };
        if (p.description === undefined) undescribed.push(`${where}.${name}`);
        if (p.items?.properties !== undefined && where.split(".").length < 2) walk(`${where}.${name}[]`, p.items);
      }
    };
    for (const tool of list.tools) {
      walk(tool.name, tool.inputSchema as never);
      expect(tool.annotations, tool.name).toBeDefined();
    }
    expect(undescribed).toEqual([]);
    // Only the worker-side tools, whose answers are small and read by the model as they come, list
    // no output schema: a bare {"type":"object"} would cost the worker profile ~280 bytes and say nothing.
    const bare = list.tools.filter((t) => t.outputSchema === undefined).map((t) => t.name).sort();
    expect(bare).toEqual(["complete_task", "fail_task", "heartbeat", "list_personas", "read_task", "register_agent", "release_task", "report_progress", "request_input"]);
    for (const tool of list.tools.filter((t) => t.outputSchema !== undefined)) expect(Object.keys((tool.outputSchema as { properties?: object }).properties ?? {}), tool.name).not.toEqual([]);
  });

  it("offers the planner profile no worker tools but register_agent", async () => {
    const { client, close } = await connectInProcess({ store: db.store, profile: "planner" });
    const names = (await client.listTools()).tools.map((t) => t.name);
    await close();
    expect(names).toContain("create_goal");
    expect(names).toContain("register_agent");
    expect(names).not.toContain("claim_task");
  });
});
