import { readFileSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { writeResultsSection } from "../../bench/lib/results.js";
import type { MachineInfo } from "../../bench/scenarios/support/machine.js";
import { writeReports } from "../../bench/scenarios/support/report.js";
import type { ScenarioResult } from "../../bench/scenarios/support/types.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/** `npm run chaos -- --record` and the bench harness share bench/RESULTS.md: neither may erase the other's sections. */
const CHAOS = "_Crash suite (issue 7)_\n\n| figure | value |\n| --- | --- |\n| kills survived | 200 |\n| duplicates found | 0 |";

const machine: MachineInfo = {
  cpu: "test cpu",
  cores: 2,
  memoryGb: 4,
  os: "linux",
  node: process.version,
  sqlite: "3.0.0",
  roster: "0.1.0",
  packages: {},
  redis: null,
};

function scenario(name: string): ScenarioResult {
  return {
    scenario: name,
    title: `${name} figures`,
    quick: false,
    startedAt: new Date(0).toISOString(),
    durationMs: 1_000,
    params: {},
    figures: { n: 1 },
    tables: [{ columns: ["a"], rows: [["1"]] }],
    targets: [],
    notes: [],
    skipped: [],
  };
}

let temp: TempDir | null = null;
afterEach(() => {
  temp?.cleanup();
  temp = null;
});

describe("bench/RESULTS.md shared by the bench harness and the chaos suite", () => {
  it("keeps the ## chaos section when the harness rewrites its scenarios' sections", () => {
    temp = makeTempDir("roster-chaos-results-");
    const md = temp.path("RESULTS.md");
    writeFileSync(md, "# roster benchmarks\n\nHeader.\n");
    writeReports({ outDir: temp.dir, results: [scenario("throughput")], command: "npm run bench -- throughput", machine });
    writeResultsSection(md, "chaos", CHAOS);
    writeReports({ outDir: temp.dir, results: [scenario("throughput"), scenario("latency")], command: "npm run bench", machine });

    const text = readFileSync(md, "utf8");
    expect(text).toContain(`## chaos\n\n${CHAOS}\n`);
    expect(text).toContain("## throughput");
    expect(text).toContain("## latency");
    expect(text.match(/^## chaos$/gm)).toHaveLength(1);
  });

  it("replaces only the ## chaos section when the chaos suite records again", () => {
    temp = makeTempDir("roster-chaos-results-");
    const md = temp.path("RESULTS.md");
    writeReports({ outDir: temp.dir, results: [scenario("throughput")], command: "npm run bench -- throughput", machine });
    writeResultsSection(md, "chaos", CHAOS);
    const before = readFileSync(md, "utf8");
    writeResultsSection(md, "chaos", CHAOS.replace("200", "201"));

    const text = readFileSync(md, "utf8");
    expect(text).toContain("| kills survived | 201 |");
    expect(text).not.toContain("| kills survived | 200 |");
    expect(text.slice(0, text.indexOf("## chaos"))).toBe(before.slice(0, before.indexOf("## chaos")));
  });
});
