/**
 * The dashboard shows what the economics and humans-in-the-loop work added (issues 16
 * and 17), end to end: a real `roster start --ui-port` over a real SQLite file, driven
 * into each state by real adapters (a usage limit, failures that trip a breaker, spend
 * that exhausts a goal budget, a concurrency key held by a running task, an approval
 * gate, a shell script that asks a question, a schedule), and headless chromium reading
 * the pages. Every expectation is read from the same database through the Store (or
 * the CLI), never written into the test. Without /usr/bin/chromium the suite skips,
 * saying why; under CI=true it fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import { openStore, type Store } from "../../src/store/index.js";
import { BIN, rosterOk } from "../cli/helpers.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { writePersonas } from "../supervisor/helpers.js";
import { CHROMIUM, SCREENSHOTS, freePort, haveChromium, launchBrowser, waitForServer } from "./browser.js";

const ROOT = join(import.meta.dirname, "..", "..");
const PUBLIC_INDEX = join(ROOT, "dist", "src", "ui", "public", "index.html");
const ERRORS = pathToFileURL(join(ROOT, "dist", "src", "errors.js")).href;
const ASK_SH = join(ROOT, "test", "fixtures", "ask.sh");
const HOUR = 3_600_000;
/** What each of the goal's children reports spending; the goal's budget is two of them. */
const CHILD_USD = 0.25;

if (!haveChromium) {
  const why = `${CHROMIUM} is missing (apt-get install -y chromium)`;
  if (process.env.CI === "true") throw new Error(`test/ui/gates.test.ts: ${why}; under CI=true the browser tests must run`);
  console.warn(`test/ui/gates.test.ts skipped: ${why}`);
}

/** "$0.5000" for amounts under a dollar, "$1.25" above: the dashboard's money format. */
const usd = (n: number) => `$${n.toFixed(n < 1 ? 4 : 2)}`;
const iso = (ms: number) => new Date(ms).toISOString();

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!haveChromium)("the dashboard shows gates, people's work, schedules, why and cost from a real store", () => {
  let temp: TempDir;
  let db: string;
  let store: Store;
  let child: ChildProcess;
  let out = "";
  let url: string;
  let context: BrowserContext;
  let page: Page;
  const ids: Record<string, number> = {};

  /** Opens a task's page and waits until it shows that task (a hash change keeps the previous page until the new one loads). */
  const openTask = async (taskId: number): Promise<void> => {
    await page.goto(`${url}#/task/${taskId}`);
    await page.getByRole("heading", { name: new RegExp(`^#${taskId} `) }).waitFor();
  };

  beforeAll(async () => {
    expect(existsSync(PUBLIC_INDEX), `${PUBLIC_INDEX}: build the front end first (npm run build)`).toBe(true);
    mkdirSync(SCREENSHOTS, { recursive: true });
    temp = makeTempDir("roster-ui-gates-");
    db = temp.path("roster.db");
    const dir = temp.path("personas");
    mkdirSync(dir);
    // The first attempt of `limited` hits its provider account's usage limit, an hour from now.
    writeFileSync(
      join(dir, "limited.mjs"),
      `import { RosterError } from ${JSON.stringify(ERRORS)};
      export async function run() {
        throw new RosterError("ADAPTER_FAILED", "usage limit reached", { details: { failure: "usage-limit", resetAt: Date.now() + ${HOUR} } });
      }\n`,
    );
    writeFileSync(
      join(dir, "spender.mjs"),
      `export async function run(task, ctx) {
        ctx.reportUsage({ model: "test-model", inputTokens: 100, outputTokens: 10, costUsd: ${CHILD_USD} });
        return { spent: ${CHILD_USD} };
      }\n`,
    );
    const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };
    writePersonas(dir, [
      { id: "limited", adapter: { kind: "module", path: "./limited.mjs" }, concurrency: 1, provider: "acct" },
      { id: "broken", adapter: { kind: "fail" }, concurrency: 1, retry: once, breaker: { failures: 2, cooldownMs: HOUR } },
      { id: "spender", adapter: { kind: "module", path: "./spender.mjs" }, concurrency: 1 },
      { id: "keyed", adapter: { kind: "sleep", ms: 10 * 60_000 }, concurrency: 2, timeoutMs: 20 * 60_000 },
      { id: "gate", adapter: { kind: "human" }, concurrency: 1 },
      { id: "asker", adapter: { kind: "shell", command: "sh", args: [ASK_SH] }, concurrency: 1 },
      { id: "reviewer", adapter: { kind: "echo" }, concurrency: 2 },
    ] as never);
    await rosterOk(["init", "--db", db, "--personas", dir], { cwd: temp.dir });
    await rosterOk(["schedule", "add", "nightly", "--cron", "0 3 * * *", "--persona", "reviewer", "--title", "Nightly triage", "--db", db], { cwd: temp.dir });
    store = await openStore({ path: db });
    const now = Date.now();
    const plan = ["Step 1: migrate the schema.", "Step 2: backfill the new column in batches of 10,000 rows.", "Step 3: switch the readers.", "Step 4: drop the old column once a day has passed without errors."].join("\n");
    const { ids: batch, refs } = await store.tasks.enqueue({
      tasks: [
        { ref: "limited", persona: "limited", title: "Summarise the logs" },
        { ref: "broken1", persona: "broken", title: "Flaky job 1" },
        { ref: "broken2", persona: "broken", title: "Flaky job 2" },
        // The goal's root never runs while the test does; its children spend.
        { ref: "goal", persona: "spender", title: "Spend on the goal", delayMs: HOUR },
        { ref: "keyA", persona: "keyed", title: "Edit the API (A)", policy: { concurrencyKey: "repo:api" } },
        { ref: "keyB", persona: "keyed", title: "Edit the API (B)", policy: { concurrencyKey: "repo:api" } },
        { ref: "review", persona: "reviewer", title: "Review the API change", dependsOn: ["keyB"] },
        { ref: "approve", persona: "gate", title: "Approve the migration plan", description: `${plan}\n${"(details) ".repeat(60)}\nEnd of the plan.` },
        { ref: "deploy", persona: "reviewer", title: "Run the migration", dependsOn: ["approve"] },
        { ref: "ask", persona: "asker", title: "Cut the release branch" },
      ],
      now,
    });
    expect(batch).toHaveLength(10);
    Object.assign(ids, refs);
    await store.economics.setBudget({ scope: "goal", key: String(ids.goal), maxCostUsd: 2 * CHILD_USD, now });
    const kids = await store.tasks.enqueue({ tasks: [1, 2, 3].map((i) => ({ persona: "spender", title: `Spend ${i}` })), parentId: ids.goal!, now });
    expect(kids.ids).toHaveLength(3);
    Object.assign(ids, Object.fromEntries(kids.ids.map((id, i) => [`kid${i + 1}`, id])));

    const port = await freePort();
    url = `http://127.0.0.1:${port}/`;
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ROSTER_")) env[k] = v;
    child = spawn(process.execPath, [BIN, "start", "--db", db, "--personas", dir, "--ui-port", String(port), "--no-metrics", "--threads", "1"], { cwd: temp.dir, env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    await waitForServer(url, child, () => out);
    // Every gate closed and every person's task parked before a page is read.
    await until("the provider pause", async () => (await store.economics.pauses({ now: Date.now() })).some((p) => p.provider === "acct"));
    await until("the open breaker", async () => (await store.economics.breakers()).some((b) => b.persona === "broken" && b.state === "open"));
    await until("the goal budget spent", async () => (await store.economics.budgets({ now: Date.now() })).some((b) => b.scope === "goal" && b.exhausted));
    await until("the full key", async () => (await store.ui!.fullKeys({ limit: 10 })).length === 1);
    await until("the question", async () => (await store.tasks.get({ taskId: ids.ask!, eventLimit: 1 })).status === "awaiting_input");
    context = await launchBrowser();
    page = await context.newPage();
    page.on("pageerror", (e) => {
      out += `\npage error: ${e.message}`;
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    await store?.close();
    temp?.cleanup();
  }, 60_000);

  it("lists under Needs attention the paused provider, the open breaker, the spent goal budget and the full concurrency key, as the store has them", async () => {
    const now = Date.now();
    const pause = (await store.economics.pauses({ now })).find((p) => p.provider === "acct")!;
    const breaker = (await store.economics.breakers()).find((b) => b.persona === "broken")!;
    const budget = (await store.economics.budgets({ now })).find((b) => b.scope === "goal")!;
    const [key] = await store.ui!.fullKeys({ limit: 10 });
    await page.goto(url);
    await page.locator("[data-live=live]").waitFor();
    const attention = page.locator("section", { has: page.getByRole("heading", { name: /^Needs attention/ }) });

    const provider = attention.locator("li[data-gate=provider]");
    await provider.waitFor();
    expect(await provider.innerText()).toContain(`acct: ${pause.reason}`);
    expect(await provider.locator("time").getAttribute("datetime")).toBe(iso(pause.until!));
    expect(await provider.getByRole("link").innerText()).toBe(`#${pause.taskId}`);
    expect(pause.taskId).toBe(ids.limited);

    const open = attention.locator("li[data-gate=breaker]");
    expect(await open.innerText()).toContain(`breaker open broken after ${breaker.consecutiveFailures} failures`);
    expect(await open.locator("time").getAttribute("datetime")).toBe(iso(breaker.openUntil!));

    const spent = attention.locator("li[data-gate=budget]");
    expect(await spent.innerText()).toContain(`goal #${ids.goal}: ${usd(budget.spentUsd)} of ${usd(budget.maxCostUsd!)}`);
    expect(budget.spentUsd).toBe(2 * CHILD_USD);

    const full = attention.locator("li[data-gate=key]");
    expect(key!.key).toBe("repo:api");
    expect(await full.innerText()).toBe(`key full repo:api: ${key!.running} of ${key!.limit} running (#${key!.holders[0]}), ${key!.pending} pending`);
    expect([key!.running, key!.limit, key!.pending]).toEqual([1, 1, 1]);
    // The personas that may not claim, each with its gate codes.
    const gated = await attention.locator("li[data-gate=persona]").allInnerTexts();
    expect(gated.some((t) => t.includes("persona limited: PROVIDER_PAUSED"))).toBe(true);
    expect(gated.some((t) => t.includes("persona broken: BREAKER_OPEN"))).toBe(true);
    // Both parked tasks, the question shown.
    expect(await attention.getByRole("link", { name: /Approve the migration plan/ }).count()).toBe(1);
    expect(await attention.locator("li", { has: page.getByRole("link", { name: /Cut the release branch/ }) }).innerText()).toContain("Which branch?");
    await page.screenshot({ path: join(SCREENSHOTS, "attention.png"), fullPage: true });
  }, 60_000);

  it("answers `why` on the page of each task a gate or a dependency holds, with the store's reasons", async () => {
    const held = { limited: "provider_paused", broken: "breaker_open", kid3: "budget_exhausted", keyB: "concurrency_key_full", review: "dependencies_unmet" };
    let broken3: number | undefined;
    for (const [ref, code] of Object.entries(held)) {
      // The third flaky job: the breaker opened before it ran (the two that failed tripped it).
      const taskId = ref === "broken" ? (broken3 = (await store.tasks.enqueue({ tasks: [{ persona: "broken", title: "Flaky job 3" }], now: Date.now() })).ids[0]!) : ids[ref]!;
      const report = await store.why.explain({ taskId, now: Date.now() });
      expect(report.reasons.map((r) => r.code)).toContain(code);
      await openTask(taskId);
      const why = page.locator("section", { has: page.getByRole("heading", { name: "Why it is not running" }) });
      await expect.poll(() => why.locator("li code").allInnerTexts()).toEqual(report.reasons.map((r) => r.code));
      // A timed gate's message says how far off it lifts ("(in 3599 s)"), which moves between the two reads.
      const steady = (m: string) => m.replace(/\(in \d+ s\)/g, "(in N s)");
      const text = steady(await why.innerText());
      for (const r of report.reasons) expect(text).toContain(steady(r.message));
    }
    expect(broken3).toBeDefined();
    await openTask(ids.review!);
    await page.getByRole("heading", { name: "Why it is not running" }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, "why.png") });
  }, 60_000);

  it("shows the cost of a task, of its goal on the task and on the goal's graph, and per goal on the overview, as the store sums it", async () => {
    const [task] = await store.economics.usageOf({ taskId: ids.kid1! });
    const goal = await store.economics.total({ rootId: ids.goal! });
    expect(goal.costUsd).toBe(2 * CHILD_USD);
    await openTask(ids.kid1!);
    const own = page.locator("[data-cost=task]");
    await own.waitFor();
    expect(await own.innerText()).toBe(`${usd(task!.costUsd!)} · ${task!.inputTokens + task!.outputTokens} tokens over 1 attempts`);
    expect(await page.locator("[data-cost=goal]").innerText()).toBe(`goal #${ids.goal}: ${usd(goal.costUsd)} · ${goal.tokens} tokens over ${goal.attempts} attempts`);
    await page.goto(`${url}#/goal/${ids.goal}`);
    const graph = page.locator("[data-cost=goal]");
    await graph.waitFor();
    expect(await graph.innerText()).toBe(`Cost of the goal: ${usd(goal.costUsd)} · ${goal.tokens} tokens over ${goal.attempts} attempts`);
    const byGoal = (await store.economics.cost({ by: "goal" })).find((r) => r.key === String(ids.goal))!;
    await page.goto(url);
    const row = page.locator("table.cost tr", { has: page.locator(`a[data-goal="${ids.goal}"]`) });
    await row.waitFor();
    expect(await row.innerText()).toMatch(new RegExp(`goal #${ids.goal}\\s+\\${usd(byGoal.costUsd)}\\s+${byGoal.tokens} tokens`));
  }, 60_000);

  it("shows a parked task's request in full; Answer and Reject act on it and the audit trail names the dashboard's user", async () => {
    // Who the dashboard acts as ("ui:" and the user it was started by), as its session says.
    const who = ((await (await fetch(new URL("api/session", url))).json()) as { user: string }).user;
    expect(who).toMatch(/^ui:./);
    // The question, answered: the script's next attempt sees the answer and completes with it.
    await openTask(ids.ask!);
    await page.locator("blockquote[aria-label=question]").waitFor();
    const [request] = await store.humans.requests({ taskId: ids.ask! });
    expect(await page.locator("blockquote[aria-label=question]").innerText()).toBe(request!.question);
    await page.getByLabel("answer").fill("release-2.0");
    await page.screenshot({ path: join(SCREENSHOTS, "question.png") });
    await page.getByRole("button", { name: "Answer" }).click();
    const header = page.locator("section").first();
    await header.locator(".badge.s-completed").waitFor({ timeout: 30_000 });
    const answered = await store.tasks.get({ taskId: ids.ask!, eventLimit: 100 });
    expect(answered.result).toEqual({ branch: "release-2.0" });
    expect(answered.attempts).toBe(1);
    expect(answered.events.find((e) => e.type === "input:answered")?.agentId).toBe(who);
    // Two attempts on the page: the one that asked (parked, not counted) and the one that finished.
    const attempts = page.locator("section", { has: page.getByRole("heading", { name: "Attempts" }) }).locator("tbody tr td:nth-child(5)");
    await expect.poll(() => attempts.allInnerTexts()).toEqual(["asked", "completed"]);

    // The approval: the whole plan is shown, not a cut of it; Reject needs a reason and blocks the dependent.
    await openTask(ids.approve!);
    const plan = page.locator("blockquote[aria-label='to approve']");
    await plan.waitFor();
    const [approval] = await store.humans.requests({ taskId: ids.approve! });
    expect(await plan.innerText()).toBe(approval!.question);
    expect(approval!.question).toContain("End of the plan.");
    expect(await page.getByRole("button", { name: "Reject" }).isDisabled()).toBe(true);
    await page.getByLabel("note or reason").fill("not before the freeze ends");
    await page.getByRole("button", { name: "Reject" }).click();
    await page.locator("section").first().locator(".badge.s-failed").waitFor({ timeout: 30_000 });
    const rejected = await store.tasks.get({ taskId: ids.approve!, eventLimit: 100 });
    expect(rejected.error?.message).toContain("not before the freeze ends");
    expect((await store.tasks.get({ taskId: ids.deploy!, eventLimit: 1 })).status).toBe("blocked");
    expect((await store.humans.requests({ taskId: ids.approve! }))[0]).toMatchObject({ outcome: "rejected", answeredBy: who });
    expect(rejected.events.find((e) => e.type === "approval:rejected")?.agentId).toBe(who);
  }, 60_000);

  it("lists schedules with their next fire time, as the store has it", async () => {
    const schedule = (await store.schedules.get({ id: "nightly" }))!;
    await page.goto(`${url}#/schedules`);
    const row = page.locator("tr", { has: page.getByRole("cell", { name: "nightly", exact: true }) });
    await row.waitFor();
    expect(await row.locator("time").first().getAttribute("datetime")).toBe(iso(schedule.nextFireAt!));
    expect(await row.innerText()).toContain("reviewer: Nightly triage");
    expect(await row.innerText()).toContain("active");
    expect(out).not.toContain("page error");
  }, 60_000);
});
