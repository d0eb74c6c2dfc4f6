import { spawn } from "node:child_process";
import { cpSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logging/logger.js";
import { localTime } from "../../src/cli/format.js";
import { openStore, type Store } from "../../src/store/index.js";
import { BIN, makeTemplate, roster, rosterOk, type Template } from "./helpers.js";

// What people read: newest first with a count of the rest, delayed tasks as
// delayed, whole event data, local times instead of epoch ms, and --json streams
// that end quietly when their reader goes away.

let template: Template;
beforeAll(async () => {
  template = await makeTemplate();
});
afterAll(() => template.cleanup());

async function withStore<T>(db: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ path: db });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Epoch ms of this decade or the next: 13 digits starting with 1. */
const EPOCH_MS = /\b1[5-9]\d{11}\b/;

describe("roster ls", () => {
  it("lists the newest first and says how many more there are", async () => {
    const f = template.copy();
    try {
      await withStore(f.db, (store) => store.tasks.enqueue({ tasks: [1, 2, 3, 4, 5].map((n) => ({ persona: "reviewer", title: `t${n}` })), now: Date.now() }));
      const out = await rosterOk(["ls", "--db", f.db, "--limit", "2"]);
      const lines = out.trimEnd().split("\n");
      expect(lines.slice(1, 3).map((l) => l.split(/\s+/)[0])).toEqual(["5", "4"]);
      expect(lines[3]).toBe("… 3 more (use --limit N or --all)");
      const all = (await rosterOk(["ls", "--db", f.db, "--all"])).trimEnd().split("\n");
      expect(all).toHaveLength(6);
      expect(all.at(-1)!.split(/\s+/)[0]).toBe("1");
    } finally {
      f.cleanup();
    }
  });

  it("shows a delayed task as pending and due later, in ls, show and status", async () => {
    const f = template.copy();
    try {
      // Due 10 minutes after the add; each command runs a moment later (tens of seconds on a loaded machine).
      await rosterOk(["add", "--db", f.db, "--persona", "reviewer", "--title", "later", "--delay", "600000"]);
      expect(await rosterOk(["ls", "--db", f.db])).toMatch(/pending, due in (10m|9m \d\ds)/);
      expect(await rosterOk(["show", "1", "--db", f.db])).toMatch(/status +pending, due in (10m|9m \d\ds)/);
      expect(await rosterOk(["status", "--db", f.db])).toMatch(/1 pending \(delayed: next due in (10m|9m \d\ds)\)/);
    } finally {
      f.cleanup();
    }
  });
});

describe("roster events and show", () => {
  it("print each event's data whole, and times as local times, never epoch ms", async () => {
    const f = template.copy();
    try {
      const long = `the agent said: ${"x".repeat(300)} END`;
      await withStore(f.db, async (store) => {
        await store.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "t", maxAttempts: 2 }], now: Date.now() });
        await store.agents.register({ id: "a1", name: "a1", kind: "cli", heartbeatTimeoutMs: 60_000, now: Date.now() });
        const [task] = await store.tasks.claim({ persona: "reviewer", agentId: "a1", leaseMs: 30_000, limit: 1, now: Date.now() });
        await store.tasks.failIfLeased({ taskId: task!.id, leaseToken: task!.leaseToken, error: { message: long, code: "ADAPTER_FAILED" }, now: Date.now() });
      });
      const events = await rosterOk(["events", "1", "--db", f.db]);
      expect(events).toContain(`${long}`);
      expect(events).not.toMatch(EPOCH_MS);
      const show = await rosterOk(["show", "1", "--db", f.db]);
      expect(show).toContain(long.slice(0, 150));
      expect(show).not.toMatch(EPOCH_MS);
    } finally {
      f.cleanup();
    }
  });
});

describe("roster show: a held lease", () => {
  it("prints the renewal stamp as what it is (the last renewal and the silence that gets it reaped), never as an expiry", async () => {
    const f = template.copy();
    try {
      const claimedAt = Date.now() - 20_000;
      const renewedAt = claimedAt + 12_000;
      await withStore(f.db, async (store) => {
        await store.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "t" }], now: claimedAt });
        await store.agents.register({ id: "a1", name: "a1", kind: "cli", heartbeatTimeoutMs: 60_000, now: claimedAt });
        await store.tasks.claim({ persona: "reviewer", agentId: "a1", leaseMs: 30_000, limit: 1, now: claimedAt });
      });
      const claimed = await rosterOk(["show", "1", "--db", f.db]);
      expect(claimed).toContain(`  agent        a1 (lease last renewed ${localTime(claimedAt)}, reaped after 30s without a renewal)\n`);
      expect(claimed).not.toContain("lease until");
      // A renewal moves the stamp; show follows it.
      await withStore(f.db, (store) => store.agents.heartbeat({ agentId: "a1", now: renewedAt }));
      expect(await rosterOk(["show", "1", "--db", f.db])).toContain(`(lease last renewed ${localTime(renewedAt)}, reaped after 30s without a renewal)`);
      const json = JSON.parse(await rosterOk(["show", "1", "--db", f.db, "--json"])) as { status: string; leaseExpiresAt: number; leaseMs: number };
      expect(json).toMatchObject({ status: "claimed", leaseExpiresAt: renewedAt + 30_000, leaseMs: 30_000 });
      // Settled: no lease, nothing printed about one.
      await withStore(f.db, (store) => store.tasks.cancel({ taskId: 1, now: Date.now() }));
      const after = await rosterOk(["show", "1", "--db", f.db]);
      expect(after).toMatch(/status +cancelled/);
      expect(after).not.toContain("last renewed");
    } finally {
      f.cleanup();
    }
  });
});

describe("--json streams", () => {
  it("status --watch --json ends quietly with exit 0 when its reader goes away (EPIPE)", async () => {
    const f = template.copy();
    try {
      const child = spawn(process.execPath, [BIN, "status", "--watch", "--json", "--interval", "100", "--db", f.db], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      // Like `| head -1`: read one line, then close the pipe.
      await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
      child.stdout.destroy();
      expect(await exited).toBe(0);
      expect(stderr).toBe("");
    } finally {
      f.cleanup();
    }
  });
});

describe("roster status --watch", () => {
  it("stamps each plain frame with a local time, and ends quietly when its reader goes away", async () => {
    const f = template.copy();
    try {
      const child = spawn(process.execPath, [BIN, "status", "--watch", "--interval", "100", "--db", f.db], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      const first = await new Promise<string>((resolve) => child.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8"))));
      child.stdout.destroy();
      expect(first).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\n/);
      expect(await exited).toBe(0);
      expect(stderr).toBe("");
    } finally {
      f.cleanup();
    }
  });
});

describe("logs people read", () => {
  it("a pretty log line shows epoch-ms fields as local times", () => {
    const lines: string[] = [];
    const logger = createLogger({ pretty: true, colorize: false, destination: { write: (line: string) => lines.push(line) } });
    const runAt = Date.now() + 4_000;
    logger.warn({ runAt, taskId: 3 }, "task will be retried");
    expect(lines.join("")).not.toMatch(EPOCH_MS);
    expect(lines.join("")).toMatch(/"runAt":"\d\d:\d\d:\d\d\.\d{3}"/);
  });

  it("the supervisor's line for a failed attempt carries the error's message beside its code", async () => {
    const f = template.copy();
    try {
      cpSync(template.personasDir, `${f.dir}/personas`, { recursive: true });
      writeFileSync(`${f.dir}/personas/breaker.md`, "---\nid: breaker\nname: Breaker\nadapter:\n  kind: fail\n  retryable: false\n---\nFails.\n");
      await rosterOk(["init", "--db", f.db], { cwd: f.dir });
      await rosterOk(["add", "--db", f.db, "--persona", "breaker", "--title", "doomed"], { cwd: f.dir });
      const res = await roster(["start", "--db", f.db, "--exit-when-idle", "--no-metrics"], { cwd: f.dir });
      expect(res.code).toBe(0);
      const finished = res.stderr
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg: string; errorCode?: string; error?: string })
        .find((l) => l.msg === "task finished" && l.errorCode !== undefined);
      expect(finished?.error).toEqual(expect.any(String));
      expect(finished!.error!.length).toBeGreaterThan(0);
    } finally {
      f.cleanup();
    }
  }, 60_000);
});
