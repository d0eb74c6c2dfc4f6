import { afterEach, describe, expect, it, vi } from "vitest";
import { harness, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  h = null;
});

/** Whether `value` is, or holds within a few levels, an object with an own `echo` key (the echo adapter's result). */
function holdsEchoResult(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== "object" || depth > 4) return false;
  if (Object.hasOwn(value, "echo")) return true;
  return Object.values(value).some((v) => holdsEchoResult(v, depth + 1));
}

/**
 * Issue 14, "one serialisation of a result": the worker thread serialises an adapter's
 * result once (it must, to check its size) and the text is what the store records. The
 * result used to be parsed back in the worker and stringified again by the store, on the
 * supervisor's main thread; now the main thread never holds it as an object.
 */
describe("a result on its way from the adapter to the database", () => {
  it("is serialised once, in the worker: the main thread neither stringifies nor parses it, and it is stored as the adapter returned it", async () => {
    h = await harness([{ id: "echoer", adapter: { kind: "echo" } }]);
    const payloads = Array.from({ length: 20 }, (_, i) => ({ n: i, text: `caf\u00e9 ${i}`, nested: { list: [1, 2.5, -0, null, "x"] } }));
    const { ids } = await h.store.tasks.enqueue({ tasks: payloads.map((payload, i) => ({ persona: "echoer", title: `t${i}`, payload })), now: Date.now() });
    const stringified: unknown[] = [];
    const parsed: string[] = [];
    const stringify = JSON.stringify;
    const parse = JSON.parse;
    vi.spyOn(JSON, "stringify").mockImplementation(function (this: unknown, ...args: Parameters<typeof JSON.stringify>) {
      if (holdsEchoResult(args[0])) stringified.push(args[0]);
      return stringify.apply(JSON, args);
    });
    vi.spyOn(JSON, "parse").mockImplementation(function (this: unknown, ...args: Parameters<typeof JSON.parse>) {
      if (typeof args[0] === "string" && args[0].includes('"echo":')) parsed.push(args[0]);
      return parse.apply(JSON, args);
    });
    const done = new Set<number>();
    const all = new Promise<void>((resolve) =>
      h!.supervisor.events.on("task:run-finished", (e) => {
        if (e.outcome === "completed") done.add(e.taskId);
        if (done.size === ids.length) resolve();
      }),
    );
    await h.supervisor.start();
    await all;
    vi.restoreAllMocks();
    expect(stringified).toEqual([]);
    expect(parsed).toEqual([]);
    for (const [i, taskId] of ids.entries()) {
      // Stored as JSON.stringify made it (-0 is 0 in JSON), read back whole.
      expect(await h.store.tasks.get({ taskId })).toMatchObject({ status: "completed", attempts: 1, result: { echo: JSON.parse(JSON.stringify(payloads[i])) } });
      expect((await h.store.tasks.resultPage({ taskId, offset: 0, limit: 10_000 })).text).toBe(JSON.stringify({ echo: payloads[i] }));
    }
  });
});
