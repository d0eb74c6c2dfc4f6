import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCENARIOS } from "../../bench/scenarios/index.js";
import { writeReports } from "../../bench/scenarios/support/report.js";
import type { ScenarioResult } from "../../bench/scenarios/support/types.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

const RUN = join(import.meta.dirname, "..", "..", "dist", "bench", "run.js");

function runHarness(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stderr }));
  });
}

interface ResultsJson {
  updatedAt: string;
  scenarios: Record<string, ScenarioResult & { command: string; machine: { node: string; sqlite: string } }>;
}

describe("the benchmark harness, run with --quick", () => {
  let tmp: TempDir;
  let run: { code: number | null; stderr: string };

  beforeAll(async () => {
    tmp = makeTempDir("roster-bench-test-");
    run = await runHarness(["--quick", "--out", tmp.dir]);
  }, 420_000);

  afterAll(() => tmp.cleanup());

  it("runs every scenario and exits 0", () => {
    expect(run.stderr).not.toContain("FAILED");
    expect(run.code).toBe(0);
  });

  it("writes results.json with one well-formed object per scenario", () => {
    const results = JSON.parse(readFileSync(tmp.path("results.json"), "utf8")) as ResultsJson;
    expect(Object.keys(results.scenarios).sort()).toEqual(SCENARIOS.map((s) => s.name).sort());
    for (const [name, r] of Object.entries(results.scenarios)) {
      expect(r.scenario).toBe(name);
      expect(r.quick).toBe(true);
      expect(r.command).toContain("--quick");
      expect(r.machine.node).toBe(process.version);
      expect(r.machine.sqlite).toMatch(/^\d+\.\d+/);
      expect(Object.keys(r.figures).length).toBeGreaterThan(0);
      expect(r.figures).not.toHaveProperty("error");
    }
  });

  it("writes a RESULTS.md section with a table for every scenario", () => {
    const md = readFileSync(tmp.path("RESULTS.md"), "utf8");
    for (const s of SCENARIOS) {
      const start = md.indexOf(`\n## ${s.name}\n`);
      expect(start, `section ${s.name}`).toBeGreaterThan(0);
      const next = md.indexOf("\n## ", start + 1);
      const section = md.slice(start, next < 0 ? undefined : next);
      expect(section).toMatch(/\n\| .+ \|\n\| --- /);
      expect(section).toContain("Command: `npm run bench --");
    }
  });

  it("reports each peer as measured or as not run with a reason, never silently dropped", () => {
    const results = JSON.parse(readFileSync(tmp.path("results.json"), "utf8")) as ResultsJson;
    const peers = results.scenarios.peers!;
    for (const peer of ["BullMQ", "plainjob", "liteque"]) {
      const measured = peer in peers.figures;
      const skipped = peers.skipped.find((s) => s.what === peer);
      expect(measured || (skipped !== undefined && skipped.reason.length > 0), peer).toBe(true);
    }
  });
});

describe("the benchmark harness's arguments", () => {
  it("refuses an unknown scenario with exit code 2, naming it, and writes nothing", async () => {
    const tmp = makeTempDir("roster-bench-test-");
    try {
      const run = await runHarness(["no-such-scenario", "--quick", "--out", tmp.dir]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('unknown scenario "no-such-scenario"');
      expect(existsSync(tmp.path("results.json"))).toBe(false);
      expect(existsSync(tmp.path("RESULTS.md"))).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });
});

describe("the RESULTS.md writer", () => {
  it("replaces the sections of the scenarios it ran and keeps the others'", () => {
    const tmp = makeTempDir("roster-bench-test-");
    try {
      writeFileSync(tmp.path("RESULTS.md"), "# roster benchmarks\n\nintro\n\n## store\n\nstore figures stay\n\n## dag\n\nold dag figures\n");
      const result: ScenarioResult = {
        scenario: "dag",
        title: "dag",
        quick: true,
        startedAt: new Date().toISOString(),
        durationMs: 1,
        params: {},
        figures: { x: 1 },
        tables: [{ columns: ["a"], rows: [["new dag figures"]] }],
        targets: [],
        notes: [],
        skipped: [],
      };
      const machine = { cpu: "cpu", cores: 1, memoryGb: 1, os: "os", node: process.version, sqlite: "3", roster: "0.1.0", redis: null, packages: {} };
      writeReports({ outDir: tmp.dir, results: [result], command: "npm run bench -- dag", machine });
      const md = readFileSync(tmp.path("RESULTS.md"), "utf8");
      expect(md).toContain("intro");
      expect(md).toContain("store figures stay");
      expect(md).toContain("new dag figures");
      expect(md).not.toContain("old dag figures");
      expect(md.indexOf("## store")).toBeLessThan(md.indexOf("## dag"));
    } finally {
      tmp.cleanup();
    }
  });
});
