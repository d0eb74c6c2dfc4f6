/**
 * Writes bench/results.json and bench/RESULTS.md. Each scenario owns its entry in
 * results.json and its `## <scenario>` section in RESULTS.md; running some scenarios
 * replaces their entries and sections and keeps everyone else's as they were.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
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

export function renderSection(result: ScenarioResult, command: string, machine: MachineInfo): string {
  const out: string[] = [`## ${result.scenario}`, ""];
  out.push(`_${result.title}_`, "");
  out.push(
    `Command: \`${command}\`${result.quick ? " (**quick**: tiny sizes, a smoke run, not figures to compare)" : ""} · ${result.startedAt.slice(0, 16).replace("T", " ")} UTC · took ${(result.durationMs / 1000).toFixed(1)} s`,
    "",
    `Machine: ${machineLine(machine)}${loadLine(result)}`,
    "",
  );
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

/** Splits a RESULTS.md into its header and `## name` sections (in file order). */
export function splitSections(text: string): { header: string; sections: Array<{ name: string; text: string }> } {
  const lines = text.split("\n");
  const header: string[] = [];
  const sections: Array<{ name: string; lines: string[] }> = [];
  for (const line of lines) {
    const m = /^## (\S+)/.exec(line);
    if (m !== null) sections.push({ name: m[1]!, lines: [line] });
    else if (sections.length === 0) header.push(line);
    else sections[sections.length - 1]!.lines.push(line);
  }
  return { header: header.join("\n"), sections: sections.map((s) => ({ name: s.name, text: s.lines.join("\n").trimEnd() + "\n" })) };
}

export function writeReports(params: {
  outDir: string;
  results: ScenarioResult[];
  command: string;
  machine: MachineInfo;
  /** Section order: scenarios in the registry's order; others keep theirs, after. */
  order: string[];
}): { json: string; markdown: string } {
  const jsonPath = join(params.outDir, "results.json");
  const mdPath = join(params.outDir, "RESULTS.md");

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
  for (const r of params.results) file.scenarios[r.scenario] = { ...r, command: params.command, machine: params.machine };
  file.updatedAt = new Date().toISOString();
  writeAtomic(jsonPath, JSON.stringify(file, null, 2) + "\n");

  const existing = existsSync(mdPath) ? splitSections(readFileSync(mdPath, "utf8")) : { header: HEADER, sections: [] };
  const byName = new Map(existing.sections.map((s) => [s.name, s.text]));
  for (const r of params.results) byName.set(r.scenario, renderSection(r, params.command, params.machine));
  const names = [...params.order.filter((n) => byName.has(n)), ...existing.sections.map((s) => s.name).filter((n) => !params.order.includes(n))];
  const header = existing.header.trim() === "" ? HEADER : existing.header;
  writeAtomic(mdPath, [header.trimEnd() + "\n", ...names.map((n) => byName.get(n)!)].join("\n"));
  return { json: jsonPath, markdown: mdPath };
}
