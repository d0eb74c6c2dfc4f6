import Database from "better-sqlite3";
import { existsSync, readFileSync } from "node:fs";
import { cpus, platform, release, totalmem } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./paths.js";

/** The machine and versions a figure was measured with, for RESULTS.md. */
export interface Environment {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  node: string;
  sqlite: string;
  roster: string;
  packages: Record<string, string | null>;
}

/** Installed version of a package, read from node_modules (null when absent). */
export function packageVersion(name: string, root = repoRoot()): string | null {
  const file = join(root, "node_modules", name, "package.json");
  return existsSync(file) ? ((JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version ?? null) : null;
}

export function environment(packages: readonly string[] = ["better-sqlite3", "p-retry", "zod"]): Environment {
  const root = repoRoot();
  const db = new Database(":memory:");
  const sqlite = db.prepare("SELECT sqlite_version()").pluck().get() as string;
  db.close();
  const cpuList = cpus();
  return {
    cpu: cpuList[0]?.model.trim() ?? "unknown",
    cores: cpuList.length,
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    sqlite,
    roster: (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version,
    packages: Object.fromEntries(packages.map((name) => [name, packageVersion(name, root)])),
  };
}

/** "AMD EPYC, 2 cores, 7.8 GB, linux 6.1 · Node v20.20.2 · SQLite 3.53.2 · better-sqlite3 12.11.1 …" as markdown lines. */
export function describeEnvironment(env: Environment): string[] {
  const packages = Object.entries(env.packages)
    .map(([name, version]) => `${name} ${version ?? "not installed"}`)
    .join(", ");
  return [
    `- Machine: ${env.cpu}, ${env.cores} cores, ${env.memoryGb} GB RAM, ${env.os}`,
    `- Versions: Node ${env.node}, SQLite ${env.sqlite}, roster ${env.roster}, ${packages}`,
  ];
}
