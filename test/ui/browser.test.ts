// The page.evaluate and waitForFunction callbacks below run in the browser: they read window, document and location.
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The dashboard end to end in a real headless browser: Debian's chromium driven by
 * playwright-core (which downloads nothing), against `roster start --ui-port` running
 * a planner goal. Screenshots are written to docs/screenshots/ for the README.
 * Without /usr/bin/chromium the suite skips, saying why; under CI=true it fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import type { TaskEvent } from "../../src/store/index.js";
import { BIN, rosterOk } from "../cli/helpers.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { CHROMIUM, SCREENSHOTS, freePort, haveChromium, launchBrowser, waitForServer } from "./browser.js";

function persona(id: string, adapter: string, extra = ""): string {
  return `---\nid: ${id}\nname: ${id[0]!.toUpperCase()}${id.slice(1)}\nadapter:\n${adapter}\nconcurrency: 4\nleaseMs: 30000\ntimeoutMs: 60000\nretry:\n  maxAttempts: 2\n  backoff: fixed\n  baseMs: 200\n  maxMs: 200\n  jitter: 0\n${extra}---\n`;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, name), fullPage: false });

const ROOT = join(import.meta.dirname, "..", "..");
const PUBLIC_INDEX = join(ROOT, "dist", "src", "ui", "public", "index.html");

if (!haveChromium) {
  const why = `${CHROMIUM} is missing (apt-get install -y chromium)`;
  if (process.env.CI === "true") throw new Error(`test/ui/browser.test.ts: ${why}; under CI=true the browser tests must run`);
  console.warn(`test/ui/browser.test.ts skipped: ${why}`);
}

describe.skipIf(!haveChromium)("the dashboard in headless chromium, beside a supervisor", () => {
  let temp: TempDir;
  let db: string;
  let personas: string;
  let child: ChildProcess;
  let out = "";
  let url: string;
  let context: BrowserContext;
  let page: Page;
  const ids: Record<string, number> = {};

  const cli = (args: string[]) => rosterOk([...args, "--db", db], { cwd: temp.dir });
  const addTask = async (args: string[]) => Number((await cli(["add", ...args])).trim());

  beforeAll(async () => {
    expect(existsSync(PUBLIC_INDEX), `${PUBLIC_INDEX}: build the front end first (npm run build)`).toBe(true);
    mkdirSync(SCREENSHOTS, { recursive: true });
    temp = makeTempDir("roster-ui-e2e-");
    db = temp.path("roster.db");
    personas = temp.path("personas");
    mkdirSync(personas);
    writeFileSync(
      join(personas, "planner.md"),
      `${persona("planner", "  kind: planner")}You are the planner. Break the goal into **small** tasks:\n\n- one task per step\n- a reviewer that depends on them\n\n## Rules\n\nPrefer \`independent\` tasks.\n`,
    );
    writeFileSync(join(personas, "implementer.md"), `${persona("implementer", "  kind: sleep\n  ms: 1500")}You implement one step.\n`);
    writeFileSync(join(personas, "reviewer.md"), `${persona("reviewer", "  kind: echo")}You review.\n`);
    writeFileSync(join(personas, "gate.md"), `${persona("gate", "  kind: human")}A person approves.\n`);
    // Fails until the file ok exists in the test's folder: the failed task the test retries.
    writeFileSync(
      join(personas, "deployer.md"),
      `${persona("deployer", `  kind: shell\n  command: sh\n  args: ["-c", "test -f '${temp.path("ok")}' || { echo 'target not ready' >&2; exit 3; }"]`)}Deploys.\n`,
    );
    await rosterOk(["init", "--db", db, "--personas", personas], { cwd: temp.dir });
    // The goal waits for a kickoff approval, so the page is open before the planner runs.
    ids.kickoff = await addTask(["--persona", "gate", "--title", "Kick off the goal"]);
    ids.goal = await addTask(["--persona", "planner", "--title", "Ship the docs site: write pages, build search, add analytics", "--depends-on", String(ids.kickoff)]);
    ids.deploy = await addTask(["--persona", "deployer", "--title", "Deploy the preview", "--max-attempts", "1"]);
    ids.release = await addTask(["--persona", "gate", "--title", "Approve the release", "--description", "Release 1.4 to everyone: the changelog is in the payload."]);
    ids.announce = await addTask(["--persona", "reviewer", "--title", "Announce the release", "--depends-on", String(ids.release)]);
    const port = await freePort();
    url = `http://127.0.0.1:${port}/`;
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ROSTER_")) env[k] = v;
    child = spawn(process.execPath, [BIN, "start", "--db", db, "--personas", personas, "--ui-port", String(port), "--no-metrics", "--threads", "1"], {
      cwd: temp.dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    await waitForServer(url, child, () => out);
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
    temp?.cleanup();
  });

  it("opens the overview, live, with counts per persona and what needs attention", async () => {
    await page.goto(url);
    await page.locator("[data-live=live]").waitFor();
    await page.getByRole("heading", { name: "Tasks by persona and state" }).waitFor();
    // The failed deploy and both approvals show up under Needs attention without a reload.
    const attention = page.locator("section", { has: page.getByRole("heading", { name: /^Needs attention/ }) });
    await attention.getByRole("link", { name: /Deploy the preview/ }).waitFor();
    await attention.getByRole("link", { name: /Approve the release/ }).waitFor();
    await attention.getByRole("link", { name: /Kick off the goal/ }).waitFor();
  }, 60_000);

  it("draws the goal's DAG and fills it in live as the planner's children arrive and run", async () => {
    await page.goto(`${url}#/goal/${ids.goal}`);
    const svg = page.locator("svg[data-nodes]");
    await svg.waitFor();
    expect(await svg.getAttribute("data-nodes")).toBe("1");
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
    // Another process approves the kickoff: the planner runs and its children appear.
    await cli(["approve", String(ids.kickoff)]);
    await page.waitForFunction(() => Number(document.querySelector("svg[data-nodes]")?.getAttribute("data-nodes")) > 4, undefined, { timeout: 30_000 });
    await page.locator(".node[data-status=in_progress]").first().waitFor({ timeout: 30_000 });
    await shot(page, "goal.png");
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    // Click a node: its task opens.
    const node = page.locator(".node[data-status=in_progress]").first();
    const nodeId = await node.getAttribute("data-id");
    await node.click();
    await page.getByRole("heading", { name: new RegExp(`^#${nodeId} `) }).waitFor();
    await page.getByRole("heading", { name: "Attempts" }).waitFor();
    // The overview while the goal runs: a running task with its progress bar.
    await page.goto(url);
    await page.locator("ul.running li progress").first().waitFor({ timeout: 30_000 });
    await shot(page, "overview.png");
    // Every node ends completed, still without a reload.
    await page.goto(`${url}#/goal/${ids.goal}`);
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
    await page.waitForFunction(
      () => {
        const nodes = [...document.querySelectorAll(".node")];
        return nodes.length > 4 && nodes.every((n) => n.getAttribute("data-status") === "completed");
      },
      undefined,
      { timeout: 60_000 },
    );
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
  }, 120_000);

  it("opens the failed task, and Retry runs it again to completion", async () => {
    await page.goto(`${url}#/task/${ids.deploy}`);
    const header = page.locator("section", { has: page.getByRole("heading", { name: `#${ids.deploy} Deploy the preview` }) });
    await header.locator(".badge.s-failed").waitFor();
    await page.getByRole("heading", { name: "Error" }).waitFor();
    await page.getByRole("heading", { name: "Why it is not running" }).waitFor();
    await shot(page, "task-failed.png");
    writeFileSync(temp.path("ok"), "ready\n");
    await page.getByRole("button", { name: "Retry" }).click();
    await header.locator(".badge.s-completed").waitFor({ timeout: 30_000 });
    const attempts = page.locator("section", { has: page.getByRole("heading", { name: "Attempts" }) }).locator("tbody tr");
    await expect.poll(() => attempts.count()).toBeGreaterThanOrEqual(2);
    const trail = await page.locator("table.events").innerText();
    expect(trail).toContain("task:retried");
  }, 60_000);

  it("approves a gate with a note; its dependent runs", async () => {
    await page.goto(`${url}#/task/${ids.release}`);
    const header = page.locator("section", { has: page.getByRole("heading", { name: `#${ids.release} Approve the release` }) });
    await header.locator(".badge.s-awaiting_approval").waitFor();
    await page.getByLabel("note or reason").fill("ship it");
    await shot(page, "approval.png");
    await page.getByRole("button", { name: "Approve" }).click();
    await header.locator(".badge.s-completed").waitFor({ timeout: 30_000 });
    expect(await page.locator("section", { has: page.getByRole("heading", { name: "Result" }) }).innerText()).toContain("ship it");
    await page.getByRole("link", { name: new RegExp(`#${ids.announce} Announce the release`) }).click();
    await page.locator(".badge.s-completed").first().waitFor({ timeout: 30_000 });
    const trail = (await (await fetch(new URL(`api/tasks/${ids.release}`, url))).json()) as { task: { events: TaskEvent[] } };
    expect(JSON.stringify(trail.task.events)).toMatch(/ui:/);
  }, 60_000);

  it("adds a plan: a bad one is refused naming the field, a good one is enqueued and runs", async () => {
    await page.goto(`${url}#/add`);
    const text = page.getByRole("textbox", { name: "plan" });
    await text.fill("tasks:\n  - persona: implementer\n    priority: high\n");
    await page.getByRole("button", { name: "Add plan" }).click();
    await expect.poll(() => page.getByRole("alert").innerText()).toMatch(/tasks\[0\]\.(title|priority)/);
    await text.fill("tasks:\n  - ref: notes\n    persona: implementer\n    title: Write the release notes\n    payload: { ms: 300 }\n  - persona: reviewer\n    title: Review the release notes\n    dependsOn: [notes]\n");
    await page.getByRole("button", { name: "Add plan" }).click();
    const added = page.getByRole("status").filter({ hasText: "Added" });
    await added.waitFor();
    await shot(page, "add-plan.png");
    await added.getByRole("link").last().click();
    await page.locator("section").first().locator(".badge.s-completed").waitFor({ timeout: 30_000 });
  }, 60_000);

  it("is usable from the keyboard: Tab reaches the navigation, Enter follows it", async () => {
    await page.goto(`${url}#/overview`);
    await page.reload();
    await page.locator("[data-live=live]").waitFor();
    // Start from the top of the document: a click on empty space moves the focus start there.
    await page.mouse.click(1270, 850);
    let reached = false;
    for (let i = 0; i < 30 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = (await page.evaluate(() => document.activeElement?.textContent?.trim())) === "Personas";
    }
    expect(reached).toBe(true);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash === "#/personas");
    await page.getByRole("heading", { name: "Rules" }).waitFor();
    await shot(page, "personas.png");
  }, 60_000);

  it("shows agents, tasks and schedules, and reads in dark mode", async () => {
    await page.goto(`${url}#/agents`);
    await page.getByRole("cell", { name: "supervisor" }).first().waitFor();
    await shot(page, "agents.png");
    await page.goto(`${url}#/tasks?status=completed`);
    await page.locator("table.tasks tbody tr").first().waitFor();
    await shot(page, "tasks.png");
    await page.goto(`${url}#/schedules`);
    await page.getByRole("heading", { name: "Schedules" }).waitFor();
    const dark = await launchBrowser("dark");
    try {
      const p = await dark.newPage();
      await p.goto(`${url}#/goal/${ids.goal}`);
      await p.locator(".node").first().waitFor();
      const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
      expect(bg).toBe("rgb(21, 23, 25)");
      await p.screenshot({ path: join(SCREENSHOTS, "goal-dark.png") });
    } finally {
      await dark.close();
    }
    expect(out).not.toContain("page error");
  }, 60_000);
});
