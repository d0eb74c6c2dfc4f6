import { cpSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { openStore, type Store } from "../../src/store/index.js";
import { closestName } from "../../src/store/suggest.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { makeTemplate, roster, rosterJson, rosterOk, type Template } from "./helpers.js";

let template: Template;
beforeAll(async () => {
  template = await makeTemplate();
});
afterAll(() => template.cleanup());

/** A copy of the template: the database, and its personas folder as ./personas beside it. */
function fixture() {
  const copy = template.copy();
  cpSync(template.personasDir, `${copy.dir}/personas`, { recursive: true });
  return copy;
}

async function withStore<T>(db: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ path: db });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const NAPPER = "---\nid: napper\nname: Napper\nadapter:\n  kind: sleep\n  ms: 10\n---\nSleeps a little.\n";

describe("an unknown persona", () => {
  it("suggests the closest known one and lists them all (roster add)", async () => {
    const f = fixture();
    try {
      const res = await roster(["add", "--db", f.db, "--persona", "implementr", "--title", "T"], { cwd: f.dir });
      expect(res.code).toBe(2);
      expect(res.stderr).toBe('roster: PERSONA_NOT_FOUND: --persona: unknown persona "implementr" (did you mean "implementer"? known: implementer, planner, reviewer)\n');
      expect(res.stdout).toBe("");
    } finally {
      f.cleanup();
    }
  });

  it("in a plan file names the task, the suggestion and the known personas", async () => {
    const f = fixture();
    try {
      writeFileSync(`${f.dir}/plan.json`, JSON.stringify({ tasks: [{ ref: "a", persona: "reviewr", title: "A" }] }));
      const res = await roster(["add", "--db", f.db, "--file", "plan.json"], { cwd: f.dir });
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('tasks[0] (ref "a").persona: unknown persona "reviewr" (did you mean "reviewer"? known: implementer, planner, reviewer)');
    } finally {
      f.cleanup();
    }
  });

  it("comes with the suggestion from the store itself, so MCP's create_tasks says the same", async () => {
    const f = fixture();
    try {
      const error = await withStore(f.db, (store) => store.tasks.enqueue({ tasks: [{ persona: "planer", title: "x" }], now: Date.now() }).catch((e: unknown) => e));
      expect(error).toBeInstanceOf(RosterError);
      expect((error as RosterError).message).toBe('tasks[0].persona: unknown persona "planer" (did you mean "planner"? known: implementer, planner, reviewer)');
    } finally {
      f.cleanup();
    }
  });

  it("is refused by roster ls --persona as by add, instead of listing nothing with exit 0", async () => {
    const f = fixture();
    try {
      await rosterOk(["add", "--db", f.db, "--persona", "reviewer", "--title", "T"], { cwd: f.dir });
      const res = await roster(["ls", "--db", f.db, "--persona", "reviewr"], { cwd: f.dir });
      expect(res.code).toBe(2);
      expect(res.stderr).toBe('roster: PERSONA_NOT_FOUND: --persona: unknown persona "reviewr" (did you mean "reviewer"? known: implementer, planner, reviewer)\n');
      expect(res.stdout).toBe("");
      // A persona defined in a file but never synced gets add's hint.
      writeFileSync(`${f.dir}/personas/napper.md`, NAPPER);
      const unsynced = await roster(["ls", "--db", f.db, "--persona", "napper"], { cwd: f.dir });
      expect(unsynced.code).toBe(2);
      expect(unsynced.stderr).toMatch(/^roster: PERSONA_NOT_FOUND: --persona: unknown persona "napper" .*; found in personas\/napper\.md but not synced/);
    } finally {
      f.cleanup();
    }
  });

  it("lists the known ones without a guess when nothing is close", () => {
    expect(closestName("zzz", ["implementer", "planner"])).toBeNull();
    expect(closestName("Planner", ["implementer", "planner"])).toBe("planner");
  });

  it("that is only a file in the personas folder says so and how to sync it", async () => {
    const f = fixture();
    try {
      writeFileSync(`${f.dir}/personas/napper.md`, NAPPER);
      const res = await roster(["add", "--db", f.db, "--persona", "napper", "--title", "T"], { cwd: f.dir });
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('unknown persona "napper"');
      expect(res.stderr).toContain("found in personas/napper.md but not synced: run `roster init` or `roster start`");
      await rosterOk(["init", "--db", f.db], { cwd: f.dir });
      expect((await rosterOk(["add", "--db", f.db, "--persona", "napper", "--title", "T"], { cwd: f.dir })).trim()).toMatch(/^\d+$/);
    } finally {
      f.cleanup();
    }
  });

  it("that is only a file which does not validate says so, not that it was never synced", async () => {
    const f = fixture();
    try {
      writeFileSync(`${f.dir}/personas/broken.md`, "---\nid: broken\nname: Broken\nadapter: { kind: bogus }\n---\nNever valid.\n");
      const res = await roster(["add", "--db", f.db, "--persona", "broken", "--title", "T"], { cwd: f.dir });
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('unknown persona "broken"');
      expect(res.stderr).toContain("defined in personas/broken.md, which does not validate (front matter.adapter.kind:");
      expect(res.stderr).not.toContain("not synced");
    } finally {
      f.cleanup();
    }
  });

  it("that is only a file beside one which does not validate names that file, which init and start refuse", async () => {
    const f = fixture();
    try {
      writeFileSync(`${f.dir}/personas/napper.md`, NAPPER);
      writeFileSync(`${f.dir}/personas/broken.md`, "---\nid: broken\nname: Broken\nadapter: { kind: bogus }\n---\nNever valid.\n");
      const res = await roster(["add", "--db", f.db, "--persona", "napper", "--title", "T"], { cwd: f.dir });
      expect(res.code).toBe(2);
      expect(res.stderr).toContain("found in personas/napper.md but not synced:");
      expect(res.stderr).toContain("`roster init` and `roster start` refuse the folder while personas/broken.md does not validate");
      expect(res.stderr).toContain("a running `roster start` syncs it within about two seconds");
    } finally {
      f.cleanup();
    }
  });
});

describe("roster personas retire", () => {
  it("hides the persona, refuses new tasks for it, keeps its tasks, and survives a sync; unretire undoes it", async () => {
    const f = fixture();
    try {
      const kept = (await rosterOk(["add", "--db", f.db, "--persona", "reviewer", "--title", "old work"], { cwd: f.dir })).trim();
      expect(await rosterOk(["personas", "retire", "reviewer", "--db", f.db], { cwd: f.dir })).toContain("persona reviewer retired");

      const listed = await rosterJson<Array<{ id: string }>>(["personas", "--db", f.db], { cwd: f.dir });
      expect(listed.map((p) => p.id)).toEqual(["implementer", "planner"]);
      const all = await rosterJson<Array<{ id: string; retiredAt: number | null }>>(["personas", "--all", "--db", f.db], { cwd: f.dir });
      expect(all.find((p) => p.id === "reviewer")?.retiredAt).toEqual(expect.any(Number));

      const refused = await roster(["add", "--db", f.db, "--persona", "reviewer", "--title", "new"], { cwd: f.dir });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('retired persona "reviewer"');
      expect(refused.stderr).not.toContain("not synced");

      // Its file is still there: a sync (init) does not bring it back, and a supervisor does not serve it.
      await rosterOk(["init", "--db", f.db], { cwd: f.dir });
      const served = await withStore(f.db, (store) => syncPersonas(store, `${f.dir}/personas`, Date.now()));
      expect(served.map((p) => p.id).sort()).toEqual(["implementer", "planner"]);
      const tasks = await rosterJson<Array<{ id: number; persona: string }>>(["ls", "--db", f.db], { cwd: f.dir });
      expect(tasks.map((t) => t.id)).toEqual([Number(kept)]);
      // Retired is not unknown: ls --persona still lists its tasks (an unknown one is refused).
      const own = await rosterJson<Array<{ id: number }>>(["ls", "--persona", "reviewer", "--db", f.db], { cwd: f.dir });
      expect(own.map((t) => t.id)).toEqual([Number(kept)]);

      await rosterOk(["personas", "unretire", "reviewer", "--db", f.db], { cwd: f.dir });
      await rosterOk(["add", "--db", f.db, "--persona", "reviewer", "--title", "new"], { cwd: f.dir });
    } finally {
      f.cleanup();
    }
  });

  it("acts on the --db it is given, wherever the command runs (the flag was taken by `personas` and ./roster.db used)", async () => {
    const f = fixture();
    try {
      const json = await rosterJson<{ id: string; retiredAt: number | null }>(["personas", "retire", "reviewer", "--json", "--db", f.db], { cwd: f.dir + "/personas" });
      expect(json).toMatchObject({ id: "reviewer", retiredAt: expect.any(Number) });
      const all = await rosterJson<Array<{ id: string; retiredAt: number | null }>>(["personas", "--all", "--db", f.db], { cwd: f.dir });
      expect(all.find((p) => p.id === "reviewer")?.retiredAt).toEqual(json.retiredAt);
      expect(await rosterOk(["personas", "unretire", "reviewer", "--db", f.db], { cwd: f.dir + "/personas" })).toContain("persona reviewer is in service again");
    } finally {
      f.cleanup();
    }
  });

  it("refuses an unknown id with a suggestion and exit 2", async () => {
    const f = fixture();
    try {
      const res = await roster(["personas", "retire", "reveiwer", "--db", f.db], { cwd: f.dir });
      expect(res.code).toBe(2);
      expect(res.stderr).toBe('roster: PERSONA_NOT_FOUND: persona: unknown persona "reveiwer" (did you mean "reviewer"? known: implementer, planner, reviewer)\n');
    } finally {
      f.cleanup();
    }
  });
});
