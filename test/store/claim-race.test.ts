import Database from "better-sqlite3";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * docs/ARCHITECTURE.md rule 3 across processes: four processes claim from one WAL file holding
 * 2,000 ready tasks, in singles and batches, and complete what they claim. Every
 * task is claimed exactly once and, from the audit trail, no two leases overlap.
 * The claimers run the built JS (dist/), so `npx tsc -p tsconfig.json` comes first
 * (npm test does it).
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const FIXTURE = join(ROOT, "test", "fixtures", "store-claimer.mjs");
const PROCESSES = 4;
const TASKS = 2_000;

interface ClaimerReport {
  agentId: string;
  claimed: number[];
  transactions: number;
  busyRetries: number;
}

interface Claimer {
  ready: Promise<void>;
  /** Resolves once the claimer has made its first claim (or found nothing, and ended). */
  first: Promise<void>;
  go(): void;
  done: Promise<ClaimerReport>;
}

function startClaimer(dbPath: string, agentId: string): Claimer {
  const child = spawn(process.execPath, [FIXTURE, dbPath, agentId], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let onReady: () => void = () => {};
  let onFirst: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const first = new Promise<void>((resolve) => (onFirst = resolve));
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
    if (out.startsWith("ready\n")) onReady();
    if (out.includes("\nfirst\n")) onFirst();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const done = new Promise<ClaimerReport>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => {
      onFirst();
      if (code !== 0) return reject(new Error(`${agentId} exited with ${code}: ${err}`));
      const line = out.split("\n").filter((l) => l.startsWith("{")).at(-1);
      if (line === undefined) return reject(new Error(`${agentId} printed no report: ${out} ${err}`));
      resolve(JSON.parse(line) as ClaimerReport);
    });
  });
  return { ready, first, go: () => child.stdin.write("go\n"), done };
}

describe("claim race across processes", () => {
  let temp: TempDir;
  beforeEach(() => {
    temp = makeTempDir("roster-race-");
  });
  afterEach(() => temp.cleanup());

  it("rule 3: four processes claiming from one file take every one of 2,000 tasks exactly once, with no overlapping leases", async () => {
    expect(existsSync(join(ROOT, "dist", "src", "store", "index.js")), "build first: npx tsc -p tsconfig.json").toBe(true);
    const dbPath = temp.path("race.db");
    const now = Date.now();
    const store = await openStore({ path: dbPath, now });
    await syncTestPersonas(store, now);
    const { ids } = await store.tasks.enqueue({
      tasks: Array.from({ length: TASKS }, (_, i) => ({ persona: "worker", title: `task ${i}`, priority: i % 3 })),
      now,
    });
    await store.close();

    const claimers = Array.from({ length: PROCESSES }, (_, i) => startClaimer(dbPath, `claimer-${i}`));
    await Promise.all(claimers.map((c) => c.ready));
    for (const c of claimers) c.go();
    // Every claimer makes its first claim before any goes on, so however the machine schedules
    // four processes, none can drain the file alone; from here on they race.
    await Promise.all(claimers.map((c) => c.first));
    for (const c of claimers) c.go();
    const reports = await Promise.all(claimers.map((c) => c.done));

    // Every task claimed exactly once, across all processes.
    const all = reports.flatMap((r) => r.claimed);
    expect(all).toHaveLength(TASKS);
    expect(new Set(all).size).toBe(TASKS);
    expect([...all].sort((a, b) => a - b)).toEqual(ids);
    // It was a race: every process won tasks.
    expect(reports.filter((r) => r.claimed.length > 0)).toHaveLength(PROCESSES);

    // From the audit trail: one claim and one completion per task, and no claim while a lease was open.
    const db = new Database(dbPath, { readonly: true });
    const events = db
      .prepare("SELECT task_id, type, agent_id, at FROM task_events WHERE task_id IS NOT NULL AND type IN ('task:claimed','task:completed','task:retrying','task:released','lease:expired') ORDER BY id")
      .all() as Array<{ task_id: number; type: string; agent_id: string; at: number }>;
    const statuses = db.prepare("SELECT status, count(*) AS n FROM task_status GROUP BY status").all();
    db.close();
    const holder = new Map<number, string | null>();
    const claims = new Map<number, number>();
    const overlaps: string[] = [];
    for (const e of events) {
      if (e.type === "task:claimed") {
        const open = holder.get(e.task_id);
        if (open != null) overlaps.push(`task ${e.task_id} claimed by ${e.agent_id} while ${open} held it`);
        holder.set(e.task_id, e.agent_id);
        claims.set(e.task_id, (claims.get(e.task_id) ?? 0) + 1);
      } else {
        if (holder.get(e.task_id) == null) overlaps.push(`task ${e.task_id}: ${e.type} without a lease`);
        holder.set(e.task_id, null);
      }
    }
    expect(overlaps).toEqual([]);
    expect(claims.size).toBe(TASKS);
    expect([...claims.values()].every((n) => n === 1)).toBe(true);
    expect([...holder.values()].every((h) => h === null)).toBe(true);
    expect(statuses).toEqual([{ status: "completed", n: TASKS }]);
    // Each claimer's own claims agree with the audit trail.
    for (const report of reports) {
      const fromEvents = events.filter((e) => e.type === "task:claimed" && e.agent_id === report.agentId).map((e) => e.task_id);
      expect(fromEvents.sort((a, b) => a - b)).toEqual([...report.claimed].sort((a, b) => a - b));
    }
  });
});
