import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { BIN } from "./helpers.js";

const SCRIPT = join(import.meta.dirname, "..", "fixtures", "run-until-signal.mjs");

/** Resolves once `path` exists (the script has started), polling the file system. */
async function fileAppears(path: string): Promise<void> {
  while (!existsSync(path)) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe("Ctrl-C on roster run", () => {
  let temp: TempDir;
  beforeEach(() => {
    temp = makeTempDir("roster-run-int-");
    mkdirSync(temp.path("personas"));
    writeFileSync(
      temp.path("personas", "waiter.md"),
      `---\nid: waiter\nname: Waiter\nadapter:\n  kind: shell\n  command: ${JSON.stringify(process.execPath)}\n  args: [${JSON.stringify(SCRIPT)}, ${JSON.stringify(temp.path("started"))}]\nretry:\n  maxAttempts: 3\n  baseMs: 10\n  maxMs: 10\n---\nWaits.\n`,
    );
  });
  afterEach(() => temp.cleanup());

  // A terminal's Ctrl-C signals the whole foreground process group (roster and the
  // CLI it runs); `kill -INT <pid>` reaches roster alone. Both are the user's.
  for (const target of ["the process group", "roster alone"] as const) {
    it(`cancels the task as the user's interruption, exit 130, when SIGINT reaches ${target}`, async () => {
      const env: NodeJS.ProcessEnv = {};
      for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_")) env[key] = value;
      const child = spawn(process.execPath, [BIN, "run", "--persona", "waiter", "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "wait for me"], {
        cwd: temp.dir,
        env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      await fileAppears(temp.path("started"));
      if (target === "the process group") process.kill(-child.pid!, "SIGINT");
      else child.kill("SIGINT");
      expect(await exited).toBe(130);

      expect(stderr).toBe("roster: task 1 cancelled: interrupted by the user (Ctrl-C / SIGINT or SIGTERM to roster run)\n");
      const store = await openStore({ path: temp.path("roster.db") });
      try {
        const task = await store.tasks.get({ taskId: 1, eventLimit: 0 });
        expect(task.status).toBe("cancelled");
        expect(task.error).toBeNull();
        const events = await store.tasks.events({ taskId: 1, limit: 0 });
        expect(events.map((e) => e.type)).not.toContain("task:retrying");
        const cancelled = events.find((e) => e.type === "task:cancelled");
        expect(cancelled?.data).toMatchObject({ reason: expect.stringContaining("interrupted by the user") });
      } finally {
        await store.close();
      }
    }, 30_000);
  }
});

describe("a failing script under roster run", () => {
  it("prints the error code, message and stderr tail in plain lines, without a stack trace or a JSON log line", async () => {
    const temp = makeTempDir("roster-run-fail-");
    try {
      mkdirSync(temp.path("personas"));
      writeFileSync(
        temp.path("personas", "broken.md"),
        `---\nid: broken\nname: Broken\nadapter:\n  kind: shell\n  command: ${JSON.stringify(process.execPath)}\n  args: ["-e", "console.error('boom: the thing broke'); process.exit(3)"]\nretry:\n  maxAttempts: 2\n  baseMs: 10\n  maxMs: 10\n---\nBreaks.\n`,
      );
      const { roster } = await import("./helpers.js");
      const res = await roster(["run", "--persona", "broken", "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "go"], { cwd: temp.dir });
      expect(res.code).toBe(1);
      const lines = res.stderr.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^roster: attempt 1 of task 1 failed \(ADAPTER_FAILED: .* exited with code 3: boom: the thing broke\); retrying in \d+ ms$/);
      expect(lines[1]).toMatch(/^roster: ADAPTER_FAILED: .* exited with code 3: boom: the thing broke$/);
      expect(lines[2]).toBe("roster: task 1 failed after 2 attempt(s)");
      expect(lines).toHaveLength(3);
      expect(res.stderr).not.toMatch(/\bat .*\.js:\d+/);
    } finally {
      temp.cleanup();
    }
  });

  it("leaves no database behind when the persona is unknown and there was none", async () => {
    const temp = makeTempDir("roster-run-nodb-");
    try {
      const { roster } = await import("./helpers.js");
      const res = await roster(["run", "--persona", "ghost", "--db", temp.path("roster.db"), "--personas", temp.path("personas"), "go"], { cwd: temp.dir });
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/^roster: PERSONA_NOT_FOUND: --persona: no persona "ghost"/);
      expect(existsSync(temp.path("roster.db"))).toBe(false);
    } finally {
      temp.cleanup();
    }
  });
});
