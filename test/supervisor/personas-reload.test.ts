import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { harness, next, writePersonas, type Harness } from "./helpers.js";

/** Personas change while a supervisor runs (issue 13): it follows without a restart. */
let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };

describe("supervisor: personas reloaded while running", () => {
  it("serves a persona whose file appears, with its settings, and follows a change of its adapter", async () => {
    h = await harness([{ id: "first", adapter: { kind: "echo" }, retry: once }], { supervisor: { personaReloadMs: 100 } });
    await h.supervisor.start();
    const reloaded = next(h.supervisor.events, "personas:reloaded", (e) => e.added.includes("napper"));
    writePersonas(h.personasDir, [{ id: "napper", adapter: { kind: "sleep" }, retry: once }]);
    await reloaded;
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "napper", title: "nap", payload: { ms: 10 } }], now: Date.now() });
    const task = await until(() => h!.store.tasks.get({ taskId: ids[0]! }), (t) => t.status === "completed");
    expect(task.status).toBe("completed");
    expect(task.result).toMatchObject({ sleptMs: 10 });
    // Its adapter changes from sleep to echo: the next task runs the new one.
    const changed = next(h.supervisor.events, "personas:reloaded", (e) => e.changed.includes("napper"));
    writePersonas(h.personasDir, [{ id: "napper", adapter: { kind: "echo" }, retry: once }]);
    await changed;
    const second = await h.store.tasks.enqueue({ tasks: [{ persona: "napper", title: "echo now", payload: { said: "hi" } }], now: Date.now() });
    const echoed = await until(() => h!.store.tasks.get({ taskId: second.ids[0]! }), (t) => t.status === "completed");
    expect(echoed.result).not.toHaveProperty("sleptMs");
  });

  it("stops claiming a persona that is retired, or marked external, while it runs; another process's sync is followed too", async () => {
    h = await harness(
      [
        { id: "first", adapter: { kind: "echo" }, retry: once },
        { id: "second", adapter: { kind: "echo" }, retry: once },
      ],
      { supervisor: { personaReloadMs: 100 } },
    );
    await h.supervisor.start();
    const other = await openStore({ path: h.dbPath });
    try {
      const retired = next(h.supervisor.events, "personas:reloaded", (e) => e.removed.includes("first"));
      await other.personas.retire({ id: "first", retired: true, now: Date.now() });
      await retired;
      const external = next(h.supervisor.events, "personas:reloaded", (e) => e.removed.includes("second"));
      writePersonas(h.personasDir, [{ id: "second", adapter: { kind: "echo" }, retry: once, external: true }]);
      await external;
      const { ids } = await other.tasks.enqueue({ tasks: [{ persona: "second", title: "for an MCP agent" }], now: Date.now() });
      await new Promise((r) => setTimeout(r, 500));
      expect((await h.store.tasks.get({ taskId: ids[0]! })).status).toBe("pending");
      // An external agent can still take it.
      const claimed = await other.tasks.claim({ persona: "second", agentId: "mcp-agent", now: Date.now() });
      expect(claimed.map((t) => t.id)).toEqual(ids);
    } finally {
      await other.close();
    }
  });

  it("keeps serving what it served when a persona file turns invalid, and says which file", async () => {
    h = await harness([{ id: "first", adapter: { kind: "echo" }, retry: once }], { supervisor: { personaReloadMs: 100 } });
    await h.supervisor.start();
    const error = next(h.supervisor.events, "supervisor:error", (e) => e.where === "personas.reload");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(h.personasDir, "broken.md"), "---\nname: broken\nadapter: { kind: nope }\n---\n");
    expect((await error).error.message).toContain("broken.md");
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "first", title: "still served" }], now: Date.now() });
    expect((await until(() => h!.store.tasks.get({ taskId: ids[0]! }), (t) => t.status === "completed")).status).toBe("completed");
    rmSync(join(h.personasDir, "broken.md"));
  });
  it("serves a good file added beside a broken one, reports the broken file once, and serves it once fixed", async () => {
    h = await harness([{ id: "first", adapter: { kind: "echo" }, retry: once }], { supervisor: { personaReloadMs: 100 } });
    await h.supervisor.start();
    const errors: Error[] = [];
    h.supervisor.events.on("supervisor:error", (e) => {
      if (e.where === "personas.reload") errors.push(e.error);
    });
    const loaded = next(h.supervisor.events, "personas:reloaded", (e) => e.added.includes("newp"));
    writeFileSync(join(h.personasDir, "broken.md"), "---\nid: broken\nname: Broken\nadapter: { kind: bogus }\n---\nNever valid.\n");
    writePersonas(h.personasDir, [{ id: "newp", adapter: { kind: "echo" }, retry: once }]);
    await loaded;
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "newp", title: "beside a broken file" }], now: Date.now() });
    expect((await until(() => h!.store.tasks.get({ taskId: ids[0]! }), (t) => t.status === "completed")).status).toBe("completed");
    // The broken file is a new one: nothing of it is served or stored.
    expect(await h.store.personas.get({ id: "broken" })).toBeNull();
    // Another file's change is a new look at the folder, not a new report of the same broken file.
    const changed = next(h.supervisor.events, "personas:reloaded", (e) => e.changed.includes("newp"));
    writePersonas(h.personasDir, [{ id: "newp", adapter: { kind: "sleep" }, retry: once }]);
    await changed;
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining("broken.md")]);
    // Fixed, it is served.
    const fixed = next(h.supervisor.events, "personas:reloaded", (e) => e.added.includes("broken"));
    writeFileSync(join(h.personasDir, "broken.md"), "---\nid: broken\nname: Broken\nadapter: { kind: echo }\n---\nValid now.\n");
    await fixed;
    const second = await h.store.tasks.enqueue({ tasks: [{ persona: "broken", title: "fixed" }], now: Date.now() });
    expect((await until(() => h!.store.tasks.get({ taskId: second.ids[0]! }), (t) => t.status === "completed")).status).toBe("completed");
    expect(errors).toHaveLength(1);
  });

  it("keeps serving the last good version of a file that turns invalid while another file is added", async () => {
    h = await harness(
      [
        { id: "first", adapter: { kind: "echo" }, retry: once },
        { id: "second", adapter: { kind: "sleep" }, retry: once },
      ],
      { supervisor: { personaReloadMs: 100 } },
    );
    await h.supervisor.start();
    const before = await h.store.personas.get({ id: "second" });
    const error = next(h.supervisor.events, "supervisor:error", (e) => e.where === "personas.reload");
    writeFileSync(join(h.personasDir, "second.md"), "---\nid: second\nname: second\nadapter: { kind: bogus }\n---\nBroken now.\n");
    expect((await error).error.message).toContain("second.md");
    const added = next(h.supervisor.events, "personas:reloaded", (e) => e.added.includes("third"));
    writePersonas(h.personasDir, [{ id: "third", adapter: { kind: "echo" }, retry: once }]);
    const reloaded = await added;
    expect(reloaded.removed).toEqual([]);
    expect(reloaded.changed).toEqual([]);
    // The broken file is still there: its persona keeps its stored version and is not marked as gone.
    expect(await h.store.personas.get({ id: "second" })).toEqual(before);
    const { ids } = await h.store.tasks.enqueue({
      tasks: [
        { persona: "second", title: "last good version", payload: { ms: 5 } },
        { persona: "third", title: "new" },
      ],
      now: Date.now(),
    });
    for (const id of ids) expect((await until(() => h!.store.tasks.get({ taskId: id }), (t) => t.status === "completed")).status).toBe("completed");
    expect((await h.store.tasks.get({ taskId: ids[0]! })).result).toMatchObject({ sleptMs: 5 });
  });
});
