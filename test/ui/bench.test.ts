/**
 * How fast the dashboard opens a page of a 100,000-task database, measured in Debian's
 * chromium: from navigation to the page's content drawn (the API's time included), the
 * median of 5 loads, and each API endpoint's own time. A measurement, not an assertion of
 * speed: it prints its figures (bench/RESULTS.md, "## dashboard") and checks only that
 * each page shows what it should. It takes a minute to build the database, so it runs
 * when ROSTER_UI_BENCH=1 (and chromium is there); otherwise it skips saying so.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import { systemClock } from "../../src/clock.js";
import { openStore, type Store, type TaskInput } from "../../src/store/index.js";
import { startUiServer, type UiServer } from "../../src/ui/server.js";
import { TEST_PERSONAS } from "../helpers/personas.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { CHROMIUM, launchBrowser } from "./browser.js";

const TOTAL = Number(process.env.ROSTER_UI_BENCH_TASKS ?? 100_000);
const GOAL_SIZE = 200;
const RUN = process.env.ROSTER_UI_BENCH === "1" && existsSync(CHROMIUM);
if (!RUN) console.warn("test/ui/bench.test.ts skipped: set ROSTER_UI_BENCH=1 (needs /usr/bin/chromium) to measure the dashboard on 100,000 tasks");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** 100,000 tasks: goals of GOAL_SIZE children, most completed, some failed, the rest pending or waiting. */
async function fill(store: Store): Promise<{ goalId: number; taskId: number }> {
  let now = systemClock.now() - 3_600_000;
  let goalId = 0;
  let made = 0;
  while (made < TOTAL) {
    const goal = await store.tasks.enqueue({ tasks: [{ persona: "planner", title: `goal ${made}` }], now });
    goalId = goal.ids[0]!;
    const children: TaskInput[] = [];
    for (let i = 0; i < GOAL_SIZE - 1 && made + 1 + children.length < TOTAL; i++) {
      children.push({ ref: `t${i}`, persona: i % 5 === 4 ? "reviewer" : "worker", title: `step ${i} of goal ${goalId}`, payload: { n: i, text: "x".repeat(200) }, ...(i % 5 === 4 ? { dependsOn: [`t${i - 1}`, `t${i - 2}`] } : {}) });
    }
    await store.tasks.enqueue({ tasks: children, parentId: goalId, now });
    made += 1 + children.length;
    now += 30;
  }
  // Settle 90% through claims, as a supervisor would: completed, with every 50th failed.
  for (let round = 0; round < 400; round++) {
    let claimed = 0;
    for (const persona of ["planner", "worker", "reviewer"]) {
      const tasks = await store.tasks.claim({ persona, agentId: "bench", limit: 1_000, now });
      claimed += tasks.length;
      await store.tasks.settle({
        settlements: tasks.map((t) =>
          t.id % 50 === 0
            ? { kind: "fail" as const, taskId: t.id, leaseToken: t.leaseToken, error: { message: "bench failure", code: "ADAPTER_FAILED", retryable: false } }
            : { kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken, result: { ok: t.id } },
        ),
        now,
      });
      now += 5;
    }
    const counts = await store.tasks.counts();
    const done = Object.values(counts).reduce((s, c) => s + (c.completed ?? 0) + (c.failed ?? 0), 0);
    if (claimed === 0 || done >= TOTAL * 0.9) break;
  }
  return { goalId, taskId: goalId + 5 };
}

describe.skipIf(!RUN)("dashboard on 100,000 tasks", () => {
  let temp: TempDir;
  let store: Store;
  let server: UiServer;
  let context: BrowserContext;
  let page: Page;
  let ids: { goalId: number; taskId: number };
  const figures: string[] = [];

  beforeAll(async () => {
    temp = makeTempDir("roster-ui-bench-");
    store = await openStore({ path: temp.path("roster.db") });
    await store.personas.sync({ personas: TEST_PERSONAS, now: systemClock.now() });
    const t0 = performance.now();
    ids = await fill(store);
    figures.push(`database: ${TOTAL} tasks built in ${((performance.now() - t0) / 1000).toFixed(1)} s; counts ${JSON.stringify(await store.tasks.counts())}`);
    // The built front end (npm run build); this file runs the server from src/, not dist/.
    server = await startUiServer({ store, port: 0, publicDir: join(import.meta.dirname, "..", "..", "dist", "src", "ui", "public") });
    context = await launchBrowser();
    page = await context.newPage();
    page.on("pageerror", (e) => figures.push(`page error: ${e.message}`));
    page.on("console", (m) => figures.push(`console: ${m.text()}`));
  }, 600_000);

  afterAll(async () => {
    console.log(`\n## dashboard figures\n${figures.join("\n")}\n`);
    await context?.close();
    await server?.close();
    await store?.close();
    temp?.cleanup();
  });

  const pages: Array<[string, string, string]> = [
    ["overview", "#/overview", "table.counts tbody tr"],
    ["tasks, first page of 50", "#/tasks", "table.tasks tbody tr"],
    ["tasks, failed only", "#/tasks?status=failed", "table.tasks tbody tr"],
    ["tasks, title search", "#/tasks?q=step%2017%20of", "table.tasks tbody tr"],
    ["task detail", "#/task/TASK", "table.events tbody tr"],
    [`goal graph (${GOAL_SIZE} nodes)`, "#/goal/GOAL", `svg[data-nodes="${GOAL_SIZE}"] .node`],
  ];

  it("opens each page, measured from navigation to content drawn", async () => {
    for (const [name, hash, selector] of pages) {
      const path = hash.replace("TASK", String(ids.taskId)).replace("GOAL", String(ids.goalId));
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        await page.goto("about:blank");
        const t0 = performance.now();
        await page.goto(`${server.url}${path}`);
        await page.locator(selector).first().waitFor({ timeout: 30_000 });
        times.push(performance.now() - t0);
      }
      figures.push(`page ${name}: median ${median(times).toFixed(0)} ms (runs ${times.map((t) => t.toFixed(0)).join(", ")})`);
    }
    expect(figures.length).toBe(1 + pages.length);
  }, 300_000);

  it("answers each API call, timed alone", async () => {
    const cookieRes = await fetch(new URL("api/session", server.url));
    const cookie = cookieRes.headers.get("set-cookie")!.split(";")[0]!;
    const calls = ["overview", "tasks?limit=50", "tasks?limit=50&before=50000", "tasks?status=failed&limit=50", "tasks?q=step%2017%20of&limit=50", `tasks/${ids.taskId}`, `goals/${ids.goalId}/graph`];
    for (const call of calls) {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const res = await fetch(new URL(`api/${call}`, server.url), { headers: { cookie } });
        bytes = (await res.arrayBuffer()).byteLength;
        expect(res.status).toBe(200);
        times.push(performance.now() - t0);
      }
      figures.push(`api ${call}: median ${median(times).toFixed(1)} ms, ${bytes} bytes`);
    }
  }, 120_000);
});
