/**
 * The machine and the versions a figure was measured with: bench/lib's environment(),
 * plus what only the harness knows (the peers' packages, liteque's own better-sqlite3 in
 * bench/liteque, and the redis-server that BullMQ ran on).
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { environment, packageVersion, type Environment } from "../../lib/machine.js";
import { findRedisServer } from "../../peers/redis.js";
import { ROOT_DIR } from "./paths.js";

export interface MachineInfo extends Environment {
  redis: string | null;
}

export function machineInfo(): MachineInfo {
  const env = environment(["better-sqlite3", "piscina", "bullmq", "ioredis", "plainjob"]);
  const litequeDir = join(ROOT_DIR, "bench", "liteque");
  env.packages.liteque = packageVersion("liteque", litequeDir);
  env.packages["better-sqlite3 (liteque's)"] = packageVersion("better-sqlite3", litequeDir);
  let redis: string | null = null;
  const bin = findRedisServer();
  if (bin !== null) {
    try {
      redis = /v=([0-9.]+)/.exec(execFileSync(bin, ["--version"], { encoding: "utf8" }))?.[1] ?? null;
    } catch {
      redis = null; // shown as absent; the scenario that needs it reports the real failure
    }
  }
  return { ...env, redis };
}

export function machineLine(m: MachineInfo): string {
  const pkgs = Object.entries(m.packages)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return `${m.cores} × ${m.cpu}, ${m.memoryGb} GB, ${m.os}; Node ${m.node}, SQLite ${m.sqlite}${m.redis !== null ? `, Redis ${m.redis}` : ""}; roster ${m.roster}, ${pkgs}`;
}
