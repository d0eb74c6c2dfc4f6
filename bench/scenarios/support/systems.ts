/**
 * The comparison systems, each run in a child process of its own: the peers (BullMQ on
 * a private redis-server, plainjob, liteque from bench/liteque) and the minimal inline
 * loop. `preparePeers` starts what they need and says, with the reason, which cannot run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { installLiteque, litequeInstalled } from "../../peers/liteque.js";
import { flushRedis, startRedis, type RedisServer } from "../../peers/redis.js";
import type { QueueRun } from "../../peers/types.js";
import { runInChild } from "./child.js";
import { benchModule } from "./paths.js";
import type { ScenarioContext, Skipped } from "./types.js";

export type PeerName = "BullMQ" | "plainjob" | "liteque";

export interface Peers {
  available: PeerName[];
  skipped: Skipped[];
  redisVersion: string | null;
  run(peer: PeerName, jobs: number, concurrency: number): Promise<QueueRun>;
  stop(): Promise<void>;
}

/** A fresh folder under the scenario's workDir for one run, removed afterwards. */
export async function inRunDir<T>(ctx: ScenarioContext, label: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(ctx.workDir, `${label.replace(/[^a-z0-9]+/gi, "-")}-`));
  try {
    return await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function preparePeers(ctx: ScenarioContext, wanted: PeerName[]): Promise<Peers> {
  const skipped: Skipped[] = [];
  const available: PeerName[] = [];
  let redis: RedisServer | null = null;
  if (wanted.includes("BullMQ")) {
    try {
      redis = await startRedis();
      available.push("BullMQ");
    } catch (error) {
      skipped.push({ what: "BullMQ", reason: `cannot start redis-server: ${(error as Error).message}` });
    }
  }
  if (wanted.includes("plainjob")) available.push("plainjob");
  if (wanted.includes("liteque")) {
    if (litequeInstalled() !== null) {
      available.push("liteque");
    } else if (ctx.quick) {
      skipped.push({
        what: "liteque",
        reason: "bench/liteque/ is not installed and a --quick run does not install it (a full `npm run bench -- peers` runs `npm ci` there, about a minute)",
      });
    } else {
      try {
        await installLiteque(ctx.log);
        available.push("liteque");
      } catch (error) {
        skipped.push({ what: "liteque", reason: `not runnable: ${(error as Error).message}` });
      }
    }
  }
  const modules: Record<PeerName, [string, string]> = {
    BullMQ: ["peers/bullmq", "runBullmq"],
    plainjob: ["peers/plainjob", "runPlainjob"],
    liteque: ["peers/liteque", "runLiteque"],
  };
  return {
    available,
    skipped,
    redisVersion: redis?.version ?? null,
    async run(peer, jobs, concurrency) {
      const [mod, fn] = modules[peer];
      return inRunDir(ctx, peer, async (dir) => {
        const result = await runInChild<QueueRun>({
          modulePath: benchModule(mod),
          fn,
          args: { jobs, concurrency, dir, redisPort: redis?.port },
        });
        if (peer === "BullMQ" && redis !== null) await flushRedis(redis.port);
        return result;
      });
    },
    async stop() {
      await redis?.stop();
    },
  };
}

/** The minimal inline loop (raw better-sqlite3, handler on the main thread), in a child. */
export function runInline(ctx: ScenarioContext, jobs: number, concurrency: number, synchronous: "NORMAL" | "FULL" = "NORMAL"): Promise<QueueRun> {
  return inRunDir(ctx, "inline", (dir) =>
    runInChild<QueueRun>({ modulePath: benchModule("peers/inline"), fn: "runInlineLoop", args: { jobs, concurrency, dir, synchronous } }),
  );
}
