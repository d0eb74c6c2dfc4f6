import { cpSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { loadPersonaDir, readPersonaDir, toPersonaUpsert } from "../../src/personas/load.js";
import type { Store } from "../../src/store/index.js";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * Persona files synced into the store (database with file fallback), and DESIGN
 * rule 11 for persona files: a malformed file is refused naming the file and the
 * field, and nothing is synced.
 */
const SHIPPED = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "personas");

async function syncDir(store: Store, dir: string, now: number): Promise<void> {
  const personas = loadPersonaDir(dir);
  await store.personas.sync({ personas: personas.map(toPersonaUpsert), now, sourceDir: resolve(dir) });
}

const GOOD = `---
id: writer
name: Writer
adapter:
  kind: echo
leaseMs: 20000
retry:
  maxAttempts: 2
  backoff: fixed
  baseMs: 100
  maxMs: 100
  jitter: 0.1
---
You write things down.
`;

const BAD_FILES: Array<[what: string, text: string, mentions: string[]]> = [
  ["front matter that is not valid YAML", "---\nid: writer\nname: [unclosed\n---\nbody\n", ["bad.md", "not valid YAML"]],
  ["a missing id", GOOD.replace("id: writer\n", ""), ["bad.md", "front matter.id"]],
  ["an adapter kind that does not exist", GOOD.replace("kind: echo", "kind: teleport"), ["bad.md", "front matter.adapter"]],
  ["a retry jitter over 1", GOOD.replace("jitter: 0.1", "jitter: 1.5"), ["bad.md", "front matter.retry.jitter"]],
  ["a missing markdown body", GOOD.replace("You write things down.\n", ""), ["bad.md", "markdown body"]],
  ["no front matter at all", "# Writer\nYou write things down.\n", ["bad.md", "front matter"]],
  ["an unknown front matter field", GOOD.replace("name: Writer", "name: Writer\ncolour: blue"), ["bad.md", "colour"]],
  ["a lease that is not an integer", GOOD.replace("leaseMs: 20000", "leaseMs: 2.5"), ["bad.md", "front matter.leaseMs"]],
  ["an id used by another file", GOOD.replace("name: Writer", "name: Other writer"), ["bad.md", "writer.md", "id"]],
];

describe("persona files", () => {
  let temp: TempDir;
  let t: TestStore;
  beforeEach(async () => {
    temp = makeTempDir("roster-personas-");
    cpSync(SHIPPED, temp.dir, { recursive: true });
    writeFileSync(temp.path("writer.md"), GOOD);
    t = await openTestStore({ personas: false });
  });
  afterEach(async () => {
    await t.close();
    temp.cleanup();
  });

  it("the shipped personas load, use built-in adapters, and sync", async () => {
    await syncDir(t.store, temp.dir, t.clock.now());
    const personas = await t.store.personas.list();
    expect(personas.map((p) => p.id)).toEqual(["implementer", "planner", "reviewer", "writer"]);
    for (const p of personas) {
      expect(p.filePresent).toBe(true);
      expect(p.definition.length).toBeGreaterThan(10);
      expect(["echo", "sleep", "fail", "flaky", "planner"]).toContain((p.config.adapter as { kind: string }).kind);
    }
  });

  it("a persona whose file is gone stays in the database, marked, and keeps serving tasks", async () => {
    await syncDir(t.store, temp.dir, t.clock.now());
    rmSync(temp.path("writer.md"));
    t.clock.advance(1_000);
    await syncDir(t.store, temp.dir, t.clock.now());
    expect(await t.store.personas.get({ id: "writer" })).toMatchObject({ filePresent: false, definition: "You write things down.", config: { leaseMs: 20_000 } });
    await t.store.tasks.enqueue({ tasks: [{ persona: "writer", title: "still works" }], now: t.clock.now() });
    const [task] = await t.store.tasks.claim({ persona: "writer", agentId: "a", now: t.clock.now() });
    expect(task?.leaseMs).toBe(20_000);
  });

  it("a folder read file by file lists each bad file with its error beside the good ones; loading it whole refuses the first", () => {
    writeFileSync(temp.path("bad.md"), GOOD.replace("kind: echo", "kind: teleport"));
    writeFileSync(temp.path("worse.md"), "# no front matter\n");
    const reading = readPersonaDir(temp.dir);
    expect(reading.personas.map((p) => p.id)).toEqual(["implementer", "planner", "reviewer", "writer"]);
    expect(reading.invalid.map((i) => [i.file, i.error.code])).toEqual([
      [temp.path("bad.md"), "PERSONA_INVALID"],
      [temp.path("worse.md"), "PERSONA_INVALID"],
    ]);
    expect(reading.invalid[0]!.error.message).toContain("front matter.adapter");
    expect(() => loadPersonaDir(temp.dir)).toThrow(reading.invalid[0]!.error.message);
  });

  for (const [what, text, mentions] of BAD_FILES) {
    it(`rule 11: a persona file with ${what} is refused naming the file and field, and nothing is synced`, async () => {
      await syncDir(t.store, temp.dir, t.clock.now());
      const before = { personas: await t.store.personas.list(), rows: await t.rowCounts() };
      writeFileSync(temp.path("bad.md"), text);
      t.clock.advance(1_000);
      let caught: unknown;
      try {
        await syncDir(t.store, temp.dir, t.clock.now());
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(RosterError);
      expect((caught as RosterError).code).toBe("PERSONA_INVALID");
      for (const m of mentions) expect((caught as RosterError).message).toContain(m);
      expect({ personas: await t.store.personas.list(), rows: await t.rowCounts() }).toEqual(before);
    });
  }
});
