import { existsSync, readFileSync, writeFileSync } from "node:fs";

/**
 * bench/RESULTS.md holds one `## name` section per benchmark. Writing a section
 * replaces that section only and keeps every other one (and the header) as it was.
 */
const DEFAULT_HEADER = "# Benchmark results\n\nEach section was written by the command shown in it, on the machine named there.\n";

export function writeResultsSection(path: string, name: string, body: string): void {
  const text = existsSync(path) ? readFileSync(path, "utf8") : DEFAULT_HEADER;
  const lines = text.split("\n");
  const title = `## ${name}`;
  const start = lines.findIndex((line) => line.trimEnd() === title);
  const section = `${title}\n\n${body.trim()}\n`;
  if (start === -1) {
    writeFileSync(path, `${text.trimEnd()}\n\n${section}`);
    return;
  }
  let end = lines.findIndex((line, i) => i > start && /^## /.test(line));
  if (end === -1) end = lines.length;
  const before = lines.slice(0, start).join("\n").trimEnd();
  const after = lines.slice(end).join("\n").trim();
  writeFileSync(path, `${before}\n\n${section}${after === "" ? "" : `\n${after}\n`}`);
}
