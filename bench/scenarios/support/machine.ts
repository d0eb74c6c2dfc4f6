/** The machine and the versions a figure was measured with. */
import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, totalmem, release, platform } from "node:os";
import { join } from "node:path";
import { findRedisServer } from "../../peers/redis.js";
import { ROOT_DIR } from "./paths.js";

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  node: string;
  sqlite: string;
  redis: string | null;
  packages: Record<string, string | null>;
}

function version(dir: string, name: string): string | null {
  const file = join(dir, "node_modules", name, "package.json");
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version : null;
}

export function machineInfo(): MachineInfo {
  const db = new Database(":memory:");
  const sqlite = db.prepare("SELECT sqlite_version()").pluck().get() as string;
  db.close();
  let redis: string | null = null;
  const bin = findRedisServer();
  if (bin !== null) {
    try {
      redis = /v=([0-9.]+)/.exec(execFileSync(bin, ["--version"], { encoding: "utf8" }))?.[1] ?? null;
    } catch {
      redis = null; // reported as unknown; the peers scenario reports the real failure
    }
  }
  const litequeDir = join(ROOT_DIR, "bench", "liteque");
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    os: `${platform()} ${release()}`,
    node: process.version,
    sqlite,
    redis,
    packages: {
      "better-sqlite3": version(ROOT_DIR, "better-sqlite3"),
      piscina: version(ROOT_DIR, "piscina"),
      bullmq: version(ROOT_DIR, "bullmq"),
      ioredis: version(ROOT_DIR, "ioredis"),
      plainjob: version(ROOT_DIR, "plainjob"),
      liteque: version(litequeDir, "liteque"),
      "better-sqlite3 (liteque)": version(litequeDir, "better-sqlite3"),
    },
  };
}

export function machineLine(m: MachineInfo): string {
  const pkgs = Object.entries(m.packages)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return `${m.cores} × ${m.cpu}, ${m.memoryGb} GB, ${m.os}; Node ${m.node}, SQLite ${m.sqlite}${m.redis !== null ? `, Redis ${m.redis}` : ""}; ${pkgs}`;
}
