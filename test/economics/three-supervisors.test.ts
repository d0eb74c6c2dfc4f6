import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store, type TaskInput, type TaskState } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { ROSTER_BIN, requireBuild } from "../mcp/helpers.js";
import { usePostgres } from "../helpers/postgres.js";
import { cleanEnv } from "../helpers/roster-process.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { writePersonas } from "../supervisor/helpers.js";

/**
 * Issue 16's acceptance under three `roster start` PROCESSES on one database, run on a
 * SQLite file and on PostgreSQL (issue 19: the same gates there; docs/economics.md): a goal budget stops new claims at the boundary within the
 * in-flight rule; a rate limit of N starts per second holds over ~11 s; tasks
 * sharing a concurrency key never overlap; a persona failing every attempt trips
 * its breaker within N attempts and claims nothing more; a usage limit with a reset
 * 5 s ahead pauses the provider's personas without counting the attempt and they
 * resume at the reset. Every check reads the audit trail (task_events) and the usage
 * table straight from the database the processes wrote.
 *
 * Order of the trail: on SQLite, writes are serial, so event ids are commit order. On
 * PostgreSQL ids are taken at insert, and a claim reads the gates on its statement's
 * snapshot (READ COMMITTED): a claim that read them just before a settlement committed
 * may insert its events after that settlement's. Such a claim was in flight when the limit
 * was crossed (it decided before), so there the checks refuse claims later than
 * DECIDED_BEFORE_MS after the crossing by their claim time (`at`), and bound the attempts
 * past a goal's limit by the slots. Concurrency keys need no allowance: a claim's key guard
 * counts after the previous holder's settlement committed, so its events follow.
 */
const SUPERVISORS = 3;
const ERRORS = pathToFileURL(join(process.cwd(), "dist", "src", "errors.js")).href;

/** spender: $0.25 an attempt (exact in binary, so sums are exact); 2 per supervisor. */
const SPEND_USD = 0.25;
const SPENDER_CONCURRENCY = 2;
const GOAL_LIMIT_USD = 2.5;
/** rated: 5 starts per 1 s window for the key, across the three processes. */
const RATE_STARTS = 5;
const RATE_TASKS = 55;
/** broken: fails every attempt; its breaker opens after 3 in a row; 1 per supervisor. */
const BREAKER_FAILURES = 3;
/** The usage limit's reset, from the failing attempt. */
const RESET_AHEAD_MS = 5_000;
/** PostgreSQL: how long after a crossing event a claim may still have decided before it (one claim transaction, with room). */
const DECIDED_BEFORE_MS = 1_000;

const server = await usePostgres();

interface Proc {
  name: string;
  child: ChildProcessWithoutNullStreams;
  exit: Promise<number | null>;
  tail(): string;
}

/** `roster start` as a real process; resolves once it logged "supervisor started". */
async function startSupervisor(index: number, dbPath: string, personasDir: string, cwd: string): Promise<Proc> {
  const args = [ROSTER_BIN, "start", "--db", dbPath, "--personas", personasDir, "--threads", "2", "--no-metrics", "--log-level", "info"];
  const child = spawn(process.execPath, args, { cwd, env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
  let tail = "";
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-4_000);
    if (tail.includes('"msg":"supervisor started"')) resolveReady();
  });
  child.stdout.resume();
  const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await Promise.race([ready, exit.then((code) => Promise.reject(new Error(`supervisor-${index} exited with ${code}:\n${tail}`)))]);
  return { name: `supervisor-${index}`, child, exit, tail: () => tail };
}

interface EventRow {
  id: number;
  task_id: number;
  type: string;
  at: number;
  agent_id: string | null;
  attempt: number | null;
}

/** A lease closes with the first of these for its task. */
const LEASE_ENDS = new Set(["task:completed", "task:retrying", "task:failed", "task:released", "task:cancelled", "lease:expired"]);

function economicsUnderThreeSupervisors(kind: "sqlite" | "postgres"): void {
  let temp: TempDir;
  let dbPath: string;
  let store: Store;
  const procs: Proc[] = [];
  /** PostgreSQL: the admin connection the checks read with (null on SQLite). */
  let admin: pg.Client | null = null;
  const postgres = kind === "postgres";

  /** Rows of a read of the database the processes wrote ($1-style parameters; numbers as numbers). */
  async function rowsOf<T>(sql: string, params: unknown[]): Promise<T[]> {
    if (admin !== null) {
      const { rows } = await admin.query(sql, params);
      return rows.map((r) => Object.fromEntries(Object.entries(r as Record<string, unknown>).map(([k, v]) => [k, typeof v === "string" && /^(id|task_id|at|attempt)$/.test(k) ? Number(v) : v]))) as T[];
    }
    const db = new Database(dbPath, { readonly: true });
    try {
      return db.prepare(sql.replace(/\$\d+/g, "?")).all(...params) as T[];
    } finally {
      db.close();
    }
  }

  async function trail(persona: string): Promise<EventRow[]> {
    return rowsOf<EventRow>(
      `SELECT e.id, e.task_id, e.type, e.at, e.agent_id, e.attempt FROM task_events e JOIN tasks t ON t.id = e.task_id
       WHERE t.persona_id = $1 ORDER BY e.id`,
      [persona],
    );
  }

  async function countsOf(persona: string): Promise<Partial<Record<TaskState, number>>> {
    return (await store.tasks.counts())[persona] ?? {};
  }

  /** Polls `check` until it holds, failing with `what` after `ms` or when a supervisor died. */
  async function until(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (await check()) return;
      const dead = procs.find((p) => p.child.exitCode !== null);
      if (dead !== undefined) throw new Error(`${dead.name} exited mid-test:\n${dead.tail()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** True once nothing of the persona is leased, twice in a row 600 ms apart (more than two poll intervals). */
  async function settled(persona: string): Promise<boolean> {
    const running = async () => {
      const c = await countsOf(persona);
      return (c.claimed ?? 0) + (c.in_progress ?? 0);
    };
    if ((await running()) > 0) return false;
    await new Promise((r) => setTimeout(r, 600));
    return (await running()) === 0;
  }

  beforeAll(async () => {
    requireBuild();
    temp = makeTempDir("roster-econ-3-");
    dbPath = postgres ? server.url() : temp.path("roster.db");
    if (postgres) {
      admin = new pg.Client({ connectionString: dbPath });
      await admin.connect();
    }
    const dir = temp.path("personas");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(dir);
    writeFileSync(
      join(dir, "spender.mjs"),
      `export async function run(task, ctx) {
        await new Promise((r) => setTimeout(r, 150));
        ctx.reportUsage({ model: "test-model", inputTokens: 100, outputTokens: 10, costUsd: ${SPEND_USD} });
        return { ok: true };
      }\n`,
    );
    writeFileSync(
      join(dir, "limited.mjs"),
      `import { RosterError } from ${JSON.stringify(ERRORS)};
      import { existsSync, writeFileSync } from "node:fs";
      // Once across processes: the first attempt hits the account's usage limit.
      const marker = new URL("./limited.once", import.meta.url);
      export async function run(task) {
        if (!existsSync(marker)) {
          writeFileSync(marker, "");
          throw new RosterError("ADAPTER_FAILED", "usage limit reached", { details: { failure: "usage-limit", resetAt: Date.now() + ${RESET_AHEAD_MS}, usage: { inputTokens: 7 } } });
        }
        return { ok: true };
      }\n`,
    );
    const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };
    writePersonas(dir, [
      { id: "spender", adapter: { kind: "module", path: "./spender.mjs" }, concurrency: SPENDER_CONCURRENCY },
      { id: "rated", adapter: { kind: "echo" }, concurrency: 10, rateLimit: { starts: RATE_STARTS, perMs: 1_000 } },
      { id: "keyed", adapter: { kind: "sleep", ms: 60 }, concurrency: 4 },
      { id: "broken", adapter: { kind: "fail" }, concurrency: 1, retry: once, breaker: { failures: BREAKER_FAILURES, cooldownMs: 600_000 } },
      { id: "limited", adapter: { kind: "module", path: "./limited.mjs" }, concurrency: 1, provider: "acct" },
      { id: "sibling", adapter: { kind: "echo" }, concurrency: 2, provider: "acct" },
    ] as never);
    store = await openStore({ path: dbPath });
    await syncPersonas(store, dir, Date.now());
    procs.push(...(await Promise.all(Array.from({ length: SUPERVISORS }, (_, i) => startSupervisor(i + 1, dbPath, dir, temp.dir)))));
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) p.child.kill("SIGTERM");
    const codes = await Promise.all(procs.map((p) => p.exit));
    await store?.close();
    await admin?.end();
    temp?.cleanup();
    expect(codes).toEqual(procs.map(() => 0));
  }, 60_000);

  describe(`economics under three supervisor processes on one ${postgres ? "PostgreSQL database" : "SQLite file"}`, () => {
    it("a goal budget stops new claims at the boundary: no claim after the settlement that spent it, overshoot only by attempts in flight", async () => {
      const now = () => Date.now();
      // The goal's root waits an hour (never runs); its 40 children spend $0.25 each.
      const { ids: [root] } = await store.tasks.enqueue({ tasks: [{ persona: "spender", title: "the goal", delayMs: 3_600_000 }], now: now() });
      await store.economics.setBudget({ scope: "goal", key: String(root), maxCostUsd: GOAL_LIMIT_USD, now: now() });
      const children = Array.from({ length: 40 }, (_, i) => ({ persona: "spender", title: `step ${i}` }));
      await store.tasks.enqueue({ tasks: children, parentId: root!, now: now() });
      await until(async () => (await store.economics.budgets({ now: now() })).some((b) => b.scope === "goal" && b.exhausted) && (await settled("spender")), "the goal budget to be spent");

      const spent = await store.economics.total({ rootId: root! });
      const events = await trail("spender");
      expect(spent.costUsd).toBeGreaterThanOrEqual(GOAL_LIMIT_USD);
      if (postgres) {
        // The crossing is the settlement that put the hold on, at its time `since`; nothing claimed later than a claim
        // transaction after it, and the attempts beyond the limit at most every slot on every supervisor but one.
        const [hold] = await rowsOf<{ since: number }>("SELECT since FROM budget_holds WHERE scope = 'goal' AND key = $1", [root!]);
        const since = Number(hold!.since);
        const late = events.filter((e) => e.type === "task:claimed" && e.at > since + DECIDED_BEFORE_MS);
        const beyond = spent.attempts - GOAL_LIMIT_USD / SPEND_USD;
        console.log(`goal budget: limit $${GOAL_LIMIT_USD}, spent $${spent.costUsd} in ${spent.attempts} attempts; ${beyond} past the limit, in flight at the crossing`);
        expect(late).toEqual([]);
        expect(beyond).toBeLessThanOrEqual(SUPERVISORS * SPENDER_CONCURRENCY - 1);
      } else {
        const usage = await rowsOf<{ task_id: number; cost_usd: number }>("SELECT task_id, cost_usd FROM usage WHERE root_id = $1 ORDER BY id", [root!]);
        // The settlement whose spend reached the limit, and its task:completed event (same transaction).
        let sum = 0;
        const crossingTask = usage.find((u) => (sum += u.cost_usd) >= GOAL_LIMIT_USD)!.task_id;
        const crossing = events.find((e) => e.type === "task:completed" && e.task_id === crossingTask)!;
        const claimsAfter = events.filter((e) => e.type === "task:claimed" && e.id > crossing.id);
        // In flight at the crossing: claimed before it, settled after it.
        const settledAfter = new Set(events.filter((e) => LEASE_ENDS.has(e.type) && e.id > crossing.id).map((e) => e.task_id));
        const inFlight = events.filter((e) => e.type === "task:claimed" && e.id < crossing.id && settledAfter.has(e.task_id)).length;
        console.log(`goal budget: limit $${GOAL_LIMIT_USD}, spent $${spent.costUsd} in ${spent.attempts} attempts; ${inFlight} in flight at the crossing`);
        expect(claimsAfter).toEqual([]);
        // The stated rule: overshoot is at most the spend of the attempts in flight when the limit was crossed,
        // and those are at most every slot of the persona on every supervisor but the one that crossed.
        expect(spent.costUsd - GOAL_LIMIT_USD).toBeLessThanOrEqual(inFlight * SPEND_USD);
        expect(inFlight).toBeLessThanOrEqual(SUPERVISORS * SPENDER_CONCURRENCY - 1);
      }
      expect((await countsOf("spender")).pending).toBe(40 + 1 - spent.attempts);
      // The goal's pending tasks say why.
      const waiting = (await store.tasks.list({ persona: "spender", status: "pending", rootId: root!, limit: 2 })).find((t) => t.id !== root)!;
      const why = await store.why.explain({ taskId: waiting.id, now: now() });
      expect(why.reasons.map((r) => r.code)).toContain("budget_exhausted");
      await store.tasks.cancel({ taskId: root!, now: now() });
    }, 90_000);

    it(`a rate limit of ${RATE_STARTS} starts per second holds in every window over ${RATE_TASKS / RATE_STARTS} s`, async () => {
      const tasks = Array.from({ length: RATE_TASKS }, (_, i) => ({ persona: "rated", title: `r${i}` }));
      await store.tasks.enqueue({ tasks, now: Date.now() });
      await until(async () => (await countsOf("rated")).completed === RATE_TASKS, "every rated task to complete", 60_000);
      const claims = (await trail("rated")).filter((e) => e.type === "task:claimed");
      const perWindow = new Map<number, number>();
      for (const c of claims) perWindow.set(Math.floor(c.at / 1_000), (perWindow.get(Math.floor(c.at / 1_000)) ?? 0) + 1);
      // Fixed windows: at most N each; any sliding second holds at most 2N (docs/economics.md).
      let slidingMax = 0;
      for (const c of claims) slidingMax = Math.max(slidingMax, claims.filter((d) => d.at >= c.at && d.at < c.at + 1_000).length);
      console.log(`rate limit: ${claims.length} claims over ${perWindow.size} windows; per window ${[...perWindow.values()].join(" ")}; sliding max ${slidingMax}`);
      expect(claims).toHaveLength(RATE_TASKS);
      expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(RATE_STARTS);
      expect(perWindow.size).toBeGreaterThanOrEqual(RATE_TASKS / RATE_STARTS);
      expect(slidingMax).toBeLessThanOrEqual(2 * RATE_STARTS);
      // The limit is shared, not per process: three processes serving the persona took 5 a window, not 15. On SQLite
      // more than one claimer takes part (usually all three; on a loaded machine one may never be first at a window's
      // turn, as a clean-checkout run under load showed). On PostgreSQL each process's clock follows the server's through
      // its own measured offset, so the same process's timer tends to fire first at every window's turn and take all 5:
      // not checked there.
      if (!postgres) expect(new Set(claims.map((c) => c.agent_id)).size).toBeGreaterThanOrEqual(2);
    }, 90_000);

    it("tasks sharing a concurrency key never overlap (limit 1), and a key with limit 2 never runs 3, by the audit trail", async () => {
      const tasks: TaskInput[] = [
        ...Array.from({ length: 15 }, (_, i) => ({ persona: "keyed", title: `repo ${i}`, policy: { concurrencyKey: "repo" } })),
        ...Array.from({ length: 15 }, (_, i) => ({ persona: "keyed", title: `pair ${i}`, policy: { concurrencyKey: "pair", concurrencyLimit: 2 } })),
        ...Array.from({ length: 15 }, (_, i) => ({ persona: "keyed", title: `free ${i}` })),
      ];
      const { ids } = await store.tasks.enqueue({ tasks, now: Date.now() });
      await until(async () => (await countsOf("keyed")).completed === tasks.length, "every keyed task to complete", 60_000);
      const keyOf = new Map(ids.map((id, i) => [id, tasks[i]?.policy?.concurrencyKey ?? null]));
      const running = new Map<string, number>();
      const max = new Map<string, number>();
      const open = new Set<number>();
      for (const e of await trail("keyed")) {
        const key = keyOf.get(e.task_id) ?? null;
        if (key === null) continue;
        if (e.type === "task:claimed") {
          open.add(e.task_id);
          running.set(key, (running.get(key) ?? 0) + 1);
          max.set(key, Math.max(max.get(key) ?? 0, running.get(key)!));
        } else if (LEASE_ENDS.has(e.type) && open.delete(e.task_id)) {
          running.set(key, running.get(key)! - 1);
        }
      }
      console.log(`concurrency keys: most running at once: repo ${max.get("repo")}, pair ${max.get("pair")}`);
      expect(max.get("repo")).toBe(1);
      expect(max.get("pair")).toBeLessThanOrEqual(2);
      expect(open.size).toBe(0);
    }, 90_000);

    it(`a persona failing every attempt trips its breaker within ${BREAKER_FAILURES} failures and claims nothing after`, async () => {
      await store.tasks.enqueue({ tasks: Array.from({ length: 12 }, (_, i) => ({ persona: "broken", title: `b${i}` })), now: Date.now() });
      await until(async () => (await store.economics.breakers()).some((b) => b.persona === "broken" && b.state === "open") && (await settled("broken")), "the breaker to open");
      // Several poll intervals more, with 12 tasks ready: nothing is claimed while it is open.
      const before = (await trail("broken")).filter((e) => e.type === "task:claimed").length;
      await new Promise((r) => setTimeout(r, 1_500));
      const events = await trail("broken");
      const claims = events.filter((e) => e.type === "task:claimed");
      const failures = events.filter((e) => e.type === "task:failed");
      const opening = failures[BREAKER_FAILURES - 1]!;
      console.log(`breaker: ${claims.length} attempts, ${failures.length} failures; open until ${(await store.economics.breakers()).find((b) => b.persona === "broken")?.openUntil}`);
      expect(claims.length).toBe(before);
      // The third failure opened it; claims after it: none. Attempts at most N plus those in flight then.
      expect(claims.filter((e) => e.id > opening.id && !(postgres && e.at <= opening.at + DECIDED_BEFORE_MS))).toEqual([]);
      expect(claims.length).toBeLessThanOrEqual(BREAKER_FAILURES + SUPERVISORS - 1);
      expect((await countsOf("broken")).pending).toBe(12 - claims.length);
      const pending = (await store.tasks.list({ persona: "broken", status: "pending", limit: 1 }))[0]!;
      expect((await store.why.explain({ taskId: pending.id, now: Date.now() })).reasons.map((r) => r.code)).toContain("breaker_open");
    }, 90_000);

    it(`a usage limit with a reset ${RESET_AHEAD_MS / 1000} s ahead pauses every persona on the account uncounted, and they resume at the reset`, async () => {
      const { ids: [limited] } = await store.tasks.enqueue({ tasks: [{ persona: "limited", title: "hits the limit" }], now: Date.now() });
      let until_: number | null = null;
      await until(async () => {
        until_ = (await store.economics.pauses({ now: Date.now() })).find((p) => p.provider === "acct")?.until ?? null;
        return until_ !== null;
      }, "the provider pause", 30_000);
      const resetAt = until_!;
      await store.tasks.enqueue({ tasks: Array.from({ length: 6 }, (_, i) => ({ persona: "sibling", title: `s${i}` })), now: Date.now() });
      await until(async () => (await countsOf("sibling")).completed === 6 && (await countsOf("limited")).completed === 1, "both personas to finish after the reset", 30_000);

      const task = await store.tasks.get({ taskId: limited! });
      expect(task).toMatchObject({ status: "completed", attempts: 1 }); // the limited attempt was not counted
      const limitedTrail = await trail("limited");
      expect(limitedTrail.map((e) => e.type).filter((t) => t !== "task:started")).toEqual(["task:enqueued", "task:claimed", "task:released", "task:claimed", "task:completed"]);
      const claimsAfterPause = [...(await trail("sibling")), ...limitedTrail.slice(2)].filter((e) => e.type === "task:claimed");
      const first = Math.min(...claimsAfterPause.map((e) => e.at));
      console.log(`usage limit: paused until ${new Date(resetAt).toISOString()}; first claim after it ${first - resetAt} ms after the reset`);
      // Nothing on the account was claimed before the reset, by any process; and it resumed by itself.
      expect(claimsAfterPause.every((e) => e.at >= resetAt)).toBe(true);
      expect((await store.economics.usageOf({ taskId: limited! })).map((u) => u.outcome)).toEqual(["released"]);
    }, 90_000);
  });
}

describe("sqlite", () => economicsUnderThreeSupervisors("sqlite"));
describe.skipIf(!server.available)("postgres", () => economicsUnderThreeSupervisors("postgres"));
