import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import type { TaskRecord } from "../../src/store/index.js";
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
});
