import { spawn } from "node:child_process";
import { cpSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { BIN, roster } from "./helpers.js";

// The README's quick start, as a newcomer runs it: `npm start` is package.json's
// start script, `roster start --demo`, on ./roster.db with ./personas, run here
// in a fresh folder outside the checkout. With a terminal (util-linux `script`
// gives it one) the live panel shows the implementers' progress fractions; the
// demo ends with a line saying what happened and what to try next.

const ROOT = join(import.meta.dirname, "..", "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
const SCRIPT = "/usr/bin/script";

/** The quick start's first code block. */
function quickStart(): string {
  const section = README.slice(README.indexOf("## Quick start"));
  return /```sh\n([\s\S]*?)```/.exec(section)![1]!;
}

/** package.json's `start` script as argv for the built CLI (it runs `node dist/src/cli/bin.js …` from the checkout). */
function startArgs(): string[] {
  const script = PKG.scripts.start!;
  const prefix = "node dist/src/cli/bin.js ";
  expect(script.startsWith(prefix)).toBe(true);
  return script.slice(prefix.length).split(" ");
}

/** Runs `command` under a pseudo-terminal; resolves with everything it wrote and its exit code. */
function inTerminal(command: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { TERM: "xterm", COLUMNS: "120", LINES: "40" };
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_") && env[key] === undefined) env[key] = value;
  const line = command.map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(SCRIPT, ["-qfec", line, "/dev/null"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

describe("the README's quick start", () => {
  let temp: TempDir;
  beforeAll(() => {
    temp = makeTempDir("roster-quickstart-");
    cpSync(join(ROOT, "personas"), temp.path("personas"), { recursive: true });
  });
  afterAll(() => temp.cleanup());

  it("is npm ci and npm start, and npm start is roster start --demo", () => {
    expect(quickStart()).toMatch(/^npm ci && npm start\b/m);
    expect(quickStart()).toMatch(/^npm test\b/m);
    expect(startArgs()).toEqual(["start", "--demo"]);
  });

  it.skipIf(!existsSync(SCRIPT))(
    "shows the demo with moving progress bars in a terminal and ends with what happened and what to try next",
    async () => {
      // npm start runs until Ctrl-C; --exit-when-idle ends it here once the demo is done.
      const { code, output } = await inTerminal([process.execPath, BIN, ...startArgs(), "--metrics-port", "0", "--exit-when-idle"], temp.dir);
      expect(code, output.slice(-2000)).toBe(0);
      // Progress fractions of running implementers, more than one value: the bars move.
      const fractions = new Set([...output.matchAll(/#\d+ implementer attempt \d +\[[█░]+\] +(\d+)%/g)].map((m) => m[1]));
      expect(fractions.size).toBeGreaterThan(1);
      expect(output).toMatch(/demo finished in \d+s: a goal planned into \d+ tasks \(\d+ implementer, \d+ planner, \d+ reviewer\), all completed; \d+ attempts failed on purpose/);
      expect(output).toContain("Try next: `roster ls`, `roster show 1`");
      const store = await openStore({ path: temp.path("roster.db") });
      try {
        const tasks = await store.tasks.list({ limit: 0 });
        expect(tasks.length).toBeGreaterThanOrEqual(5);
        expect(tasks.filter((t) => t.status !== "completed")).toEqual([]);
      } finally {
        await store.close();
      }
    },
    90_000,
  );

  it("on a database that already has tasks, says why the demo was not seeded", async () => {
    const dir = makeTempDir("roster-quickstart-again-");
    try {
      cpSync(join(ROOT, "personas"), dir.path("personas"), { recursive: true });
      const store = await openStore({ path: dir.path("roster.db") });
      await store.close();
      expect((await roster(["init"], { cwd: dir.dir })).code).toBe(0);
      expect((await roster(["add", "--persona", "reviewer", "--title", "mine"], { cwd: dir.dir })).code).toBe(0);
      const res = await roster([...startArgs(), "--metrics-port", "0", "--exit-when-idle"], { cwd: dir.dir, timeoutMs: 60_000 });
      expect(res.code).toBe(0);
      expect(res.stderr).toContain("demo not seeded: ./roster.db already holds 1 task(s), and the demo only starts on an empty database");
    } finally {
      dir.cleanup();
    }
  }, 60_000);
});
