import { readdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadPersonaDir } from "../../src/personas/load.js";

const PERSONAS = resolve(dirname(fileURLToPath(import.meta.url)), "../../personas");

describe("example agent personas (README: Running real agent CLIs)", () => {
  it("are valid persona files using the claude, codex and gemini profiles with worktrees", () => {
    const examples = loadPersonaDir(resolve(PERSONAS, "examples"));
    expect(examples.map((p) => [p.id, p.adapter.kind === "agent" ? p.adapter.profile : p.adapter.kind])).toEqual([
      ["codex-implementer", "codex"],
      ["implementer", "claude"],
      ["planner", "claude"],
      ["reviewer", "gemini"],
    ]);
    const implementers = examples.filter((p) => p.id.endsWith("implementer"));
    expect(implementers.every((p) => p.adapter.kind === "agent" && p.adapter.workspace?.kind === "worktree")).toBe(true);
  });

  it("are not loaded from the default personas folder, which reads only its own *.md files", () => {
    expect(readdirSync(PERSONAS)).toContain("examples");
    const ids = loadPersonaDir(PERSONAS).map((p) => p.id);
    expect(ids).not.toContain("codex-implementer");
    expect(loadPersonaDir(PERSONAS).every((p) => p.sourcePath !== null && dirname(p.sourcePath) === PERSONAS)).toBe(true);
  });
});
