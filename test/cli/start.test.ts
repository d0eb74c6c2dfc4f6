import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import type { TaskDetail, TaskRecord } from "../../src/store/index.js";
import { makeTempDir } from "../helpers/tmp.js";
import { BIN, rosterJson, rosterOk } from "./helpers.js";

describe("roster start", () => {
  it("newcomer: in a fresh folder, init then start --demo --exit-when-idle completes every task of the demo goal", async () => {
    const temp = makeTempDir("roster-newcomer-");
    try {
      await rosterOk(["init"], { cwd: temp.dir });
      await rosterOk(["start", "--demo", "--exit-when-idle", "--no-metrics", "--log-level", "silent"], { cwd: temp.dir, timeoutMs: 120_000 });
      const tasks = await rosterJson<TaskRecord[]>(["ls", "--limit", "0"], { cwd: temp.dir });
      expect(tasks.length).toBeGreaterThanOrEqual(5);
      expect(new Set(tasks.map((t) => t.persona))).toEqual(new Set(["planner", "implementer", "reviewer"]));
      expect(tasks.filter((t) => t.status !== "completed")).toEqual([]);
    } finally {
      temp.cleanup();
    }
  });

  it("serves /metrics and /healthz on the asked port and stops with exit 0 on SIGTERM", async () => {
    const temp = makeTempDir("roster-start-");
    try {
      await rosterOk(["init"], { cwd: temp.dir });
      const env: NodeJS.ProcessEnv = {};
      for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_")) env[key] = value;
      const child = spawn(process.execPath, [BIN, "start", "--metrics-port", "0", "--log-level", "info"], { cwd: temp.dir, env, stdio: ["ignore", "ignore", "pipe"] });
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      try {
        // stderr is not a terminal here, so logs are JSON lines; wait for the one naming the URL.
        const url = await new Promise<string>((resolve, reject) => {
          const lines = createInterface({ input: child.stderr! });
          lines.on("line", (line) => {
            if (!line.startsWith("{")) return;
            const record = JSON.parse(line) as { msg?: string; url?: string };
            if (record.msg === "serving metrics" && typeof record.url === "string") resolve(record.url);
          });
          child.on("close", (code) => reject(new Error(`roster start exited (${code}) before serving metrics`)));
        });
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
        const metrics = await fetch(url);
        expect(metrics.status).toBe(200);
        expect(await metrics.text()).toMatch(/^# TYPE roster_\w+/m);
        const health = await fetch(url.replace(/\/metrics$/, "/healthz"));
        expect([200, 503]).toContain(health.status);
      } finally {
        child.kill("SIGTERM");
      }
      expect(await exited).toBe(0);
    } finally {
      temp.cleanup();
    }
  });

  it("a second SIGTERM exits at once and gives the running task back uncounted, however often; the task and its dependent then complete", async () => {
    // A script that ignores SIGTERM keeps the graceful stop waiting, so the second signal comes
    // while the attempt still holds its lease. Left to the reaper, each such exit counted a lost
    // lease, and the third failed the task (LEASE_EXPIRED) though it did nothing (rule 10, 12).
    const temp = makeTempDir("roster-exit-at-once-");
    try {
      const personas = temp.path("personas");
      mkdirSync(personas);
      const script = `trap '' TERM; cat >/dev/null; while [ ! -f ${JSON.stringify(temp.path("go"))} ]; do sleep 0.1; done; echo '{"ok":true}'`;
      writeFileSync(
        `${personas}/stubborn.md`,
        `---\nid: stubborn\nname: Stubborn\nadapter: { kind: shell, command: /bin/sh, args: ${JSON.stringify(["-c", script])} }\nleaseMs: 3000\nretry: { maxAttempts: 1 }\n---\nIgnores SIGTERM until told to finish.\n`,
      );
      writeFileSync(`${personas}/after.md`, "---\nid: after\nname: After\nadapter: { kind: echo }\n---\nRuns after.\n");
      await rosterOk(["init"], { cwd: temp.dir });
      await rosterOk(["add", "--persona", "stubborn", "--title", "long"], { cwd: temp.dir });
      await rosterOk(["add", "--persona", "after", "--title", "then", "--depends-on", "1"], { cwd: temp.dir });
      const env: NodeJS.ProcessEnv = {};
      for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_")) env[key] = value;
      const show = (id: number) => rosterJson<TaskDetail>(["show", String(id), "--json"], { cwd: temp.dir });
      // Polled in the file itself, not through a process per look: the suite runs beside others on a loaded machine.
      const statusOf = (id: number): string => {
        const db = new Database(temp.path("roster.db"), { readonly: true, timeout: 5_000 });
        try {
          return db.prepare("SELECT status FROM task_status WHERE task_id = ?").pluck().get(id) as string;
        } finally {
          db.close();
        }
      };
      for (let round = 1; round <= 2; round++) {
        const child = spawn(process.execPath, [BIN, "start", "--no-metrics", "--log-level", "warn"], { cwd: temp.dir, env, stdio: ["ignore", "ignore", "ignore"] });
        const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
        for (let i = 0; statusOf(1) !== "in_progress"; i++) {
          if (i > 600) throw new Error(`round ${round}: task 1 never started`);
          await new Promise((r) => setTimeout(r, 100));
        }
        child.kill("SIGTERM");
        await new Promise((r) => setTimeout(r, 300));
        child.kill("SIGTERM");
        expect(await exited).toBe(143);
        const task = await show(1);
        const trail = task.events.map((e) => e.type).join(", ");
        expect(task, `round ${round}: ${trail}`).toMatchObject({ status: "pending", attempts: 0, error: null });
        expect(task.events.at(-1)).toMatchObject({ type: "task:released", data: { reason: "supervisor exited at once (a second signal)" } });
        const db = new Database(temp.path("roster.db"), { readonly: true });
        try {
          expect(db.prepare("SELECT leases_lost FROM task_status WHERE task_id = 1").pluck().get()).toBe(0);
        } finally {
          db.close();
        }
      }
      writeFileSync(temp.path("go"), "");
      await rosterOk(["start", "--exit-when-idle", "--no-metrics", "--log-level", "silent"], { cwd: temp.dir, timeoutMs: 120_000 });
      expect(statusOf(1)).toBe("completed");
      expect(statusOf(2)).toBe("completed");
    } finally {
      temp.cleanup();
    }
  }, 180_000);
});
