/**
 * Writes bench/results.json and bench/RESULTS.md. Each scenario owns its entry in
 * results.json and its `## <scenario>` section in RESULTS.md (written with bench/lib's
 * writeResultsSection); running some scenarios replaces their entries and sections and
 * keeps everyone else's (other benchmarks' sections too) as they were.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeResultsSection } from "../../lib/results.js";
import { machineLine, type MachineInfo } from "./machine.js";
import type { ScenarioResult, Table } from "./types.js";

export interface ResultsFile {
  updatedAt: string;
  scenarios: Record<string, ScenarioResult & { command: string; machine: MachineInfo }>;
}

const HEADER = `# roster benchmarks

Produced by \`npm run bench -- [scenario ...] [--quick]\` (see the README's Benchmarks section).
Each section was written by the command shown under its title, on the machine named there;
figures are medians of the repetitions with min–max in brackets. Targets are issue 6's.
Machine-readable figures: \`bench/results.json\`.
`;

function writeAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function renderTable(table: Table): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const lines = [];
  if (table.caption !== undefined) lines.push(`${table.caption}`, "");
  lines.push(`| ${table.columns.map(esc).join(" | ")} |`);
  lines.push(`| ${table.columns.map(() => "---").join(" | ")} |`);
  for (const row of table.rows) lines.push(`| ${row.map(esc).join(" | ")} |`);
  return lines.join("\n");
}

function loadLine(result: ScenarioResult): string {
  const load = result.params.loadAverage1m as { before: number; after: number } | undefined;
  return load === undefined ? "" : `; 1-minute load average ${load.before} before, ${load.after} after (other work on the machine slows every system alike)`;
}

/** A scenario's section body (bench/lib's writer adds the `## name` title). */
export function renderSection(result: ScenarioResult, command: string, machine: MachineInfo): string {
  const out: string[] = [];
  out.push(`_${result.title}_`, "");
  out.push(
    `Command: \`${command}\`${result.quick ? " (**quick**: tiny sizes, a smoke run, not figures to compare)" : ""} · ${result.startedAt.slice(0, 16).replace("T", " ")} UTC · took ${(result.durationMs / 1000).toFixed(1)} s`,
    "",
    `Machine: ${machineLine(machine)}${loadLine(result)}`,
    "",
  );
  if (result.markdown !== undefined) out.push(result.markdown.trim(), "");
  for (const table of result.tables) out.push(renderTable(table), "");
  if (result.targets.length > 0) {
    out.push(
      renderTable({
        caption: "Targets (issue 6), measured in this run:",
        columns: ["target", "wanted", "measured", "met"],
        rows: result.targets.map((t) => [t.name, t.target, t.value, t.met === null ? "not measured" : t.met ? "yes" : "**no**"]),
      }),
      "",
    );
  }
  if (result.skipped.length > 0) {
    out.push("Not run:", "");
    for (const s of result.skipped) out.push(`- ${s.what}: ${s.reason}`);
    out.push("");
  }
  if (result.notes.length > 0) {
    for (const n of result.notes) out.push(n, "");
  }
  return out.join("\n").trimEnd() + "\n";
}

export function writeReports(params: {
  outDir: string;
  results: ScenarioResult[];
  command: string;
  machine: MachineInfo;
}): { json: string; markdown: string } {
  const jsonPath = join(params.outDir, "results.json");
  const mdPath = join(params.outDir, "RESULTS.md");
  mkdirSync(params.outDir, { recursive: true });

  let file: ResultsFile = { updatedAt: "", scenarios: {} };
  if (existsSync(jsonPath)) {
    try {
      const parsed = JSON.parse(readFileSync(jsonPath, "utf8")) as Partial<ResultsFile>;
      if (parsed !== null && typeof parsed.scenarios === "object" && parsed.scenarios !== null) file = { updatedAt: "", scenarios: parsed.scenarios };
    } catch {
      // An unreadable results.json is replaced: the run's own figures are what matter.
      file = { updatedAt: "", scenarios: {} };
    }
  }
  for (const r of params.results) {
    const { markdown: _markdown, ...rest } = r;
    file.scenarios[r.scenario] = { ...rest, command: params.command, machine: params.machine };
  }
  file.updatedAt = new Date().toISOString();
  writeAtomic(jsonPath, JSON.stringify(file, null, 2) + "\n");

  // bench/lib's writer replaces one `## name` section and keeps the rest of the file.
  if (!existsSync(mdPath)) writeAtomic(mdPath, HEADER);
  for (const r of params.results) writeResultsSection(mdPath, r.scenario, renderSection(r, params.command, params.machine));
  return { json: jsonPath, markdown: mdPath };
}
