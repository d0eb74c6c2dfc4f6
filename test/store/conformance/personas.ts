import { expect, it } from "vitest";
import type { PersonaUpsert } from "../../../src/store/index.js";
import { TEST_PERSONAS } from "../../helpers/personas.js";
import { claimOne, enqueueOne, type GetCtx } from "./support.js";

const DIR = "/srv/roster/personas";
const fromFile = (p: PersonaUpsert): PersonaUpsert => ({ ...p, sourcePath: `${DIR}/${p.id}.md` });

/** Personas: database with file fallback. */
export function personaRules(get: GetCtx): void {
  it("personas: sync keeps a persona whose file is gone, marks it, and still serves it", async () => {
    const ctx = get();
    const files = TEST_PERSONAS.map(fromFile);
    await ctx.store.personas.sync({ personas: files, now: ctx.clock.now(), sourceDir: DIR });
    ctx.clock.advance(1_000);
    await ctx.store.personas.sync({ personas: files.filter((p) => p.id !== "reviewer"), now: ctx.clock.now(), sourceDir: DIR });
    const reviewer = await ctx.store.personas.get({ id: "reviewer" });
    expect(reviewer).toMatchObject({ id: "reviewer", filePresent: false, definition: "Reviews the work.", sourcePath: `${DIR}/reviewer.md` });
    expect((await ctx.store.personas.get({ id: "worker" }))?.filePresent).toBe(true);
    expect((await ctx.store.personas.list()).map((p) => p.id)).toEqual(["planner", "reviewer", "worker"]);
    // Still serves: tasks of it are enqueued and claimed with its stored lease.
    const id = await enqueueOne(ctx, { persona: "reviewer" });
    const task = await claimOne(ctx, "reviewer");
    expect([task.id, task.leaseMs]).toEqual([id, 10_000]);
    // Its file coming back clears the mark.
    await ctx.store.personas.sync({ personas: files, now: ctx.clock.now(), sourceDir: DIR });
    expect((await ctx.store.personas.get({ id: "reviewer" }))?.filePresent).toBe(true);
  });

  it("personas: re-syncing an unchanged persona keeps its updatedAt; a change moves it", async () => {
    const ctx = get();
    const worker = fromFile(TEST_PERSONAS[0]!);
    await ctx.store.personas.sync({ personas: [worker], now: ctx.clock.now(), sourceDir: DIR });
    const first = await ctx.store.personas.get({ id: "worker" });
    ctx.clock.advance(5_000);
    await ctx.store.personas.sync({ personas: [worker], now: ctx.clock.now(), sourceDir: DIR });
    expect((await ctx.store.personas.get({ id: "worker" }))?.updatedAt).toBe(first!.updatedAt);
    await ctx.store.personas.sync({ personas: [{ ...worker, definition: "Does better work." }], now: ctx.clock.now(), sourceDir: DIR });
    expect(await ctx.store.personas.get({ id: "worker" })).toMatchObject({ updatedAt: ctx.clock.now(), definition: "Does better work." });
  });

  it("store: a closed store refuses reads and writes with a typed error", async () => {
    const ctx = get();
    await ctx.store.close();
    await expect(ctx.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "late" }], now: ctx.clock.now() })).rejects.toMatchObject({
      code: "INVALID_STATE",
    });
    await expect(ctx.store.tasks.counts()).rejects.toMatchObject({ code: "INVALID_STATE" });
  });

  it("personas: an unknown persona reads as null", async () => {
    const ctx = get();
    expect(await ctx.store.personas.get({ id: "nobody" })).toBeNull();
  });
}
