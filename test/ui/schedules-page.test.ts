// The page.evaluate callbacks below run in the browser.
/// <reference lib="dom" />
/**
 * The dashboard's Schedules page in headless chromium (Debian's, through playwright-core),
 * over `roster ui` on a database holding schedules in each state `schedule ls` tells apart
 * (docs/humans-and-schedules.md). Without /usr/bin/chromium it skips; under CI=true it fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrowserContext, Page } from "playwright-core";
import { openStore } from "../../src/store/index.js";
import { BIN, makeTemplate, type Template } from "../cli/helpers.js";
import { CHROMIUM, freePort, haveChromium, launchBrowser, waitForServer } from "./browser.js";

if (!haveChromium && process.env.CI === "true") throw new Error(`test/ui/schedules-page.test.ts: ${CHROMIUM} is missing; under CI=true the browser tests must run`);

describe.skipIf(!haveChromium)("the dashboard's Schedules page", () => {
  let template: Template;
  let child: ChildProcess;
  let out = "";
  let url: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    template = await makeTemplate();
    const { db } = template.copy();
    const store = await openStore({ path: db });
    try {
      const now = Date.now();
      const schedule = (id: string, nextFireAt: number) => ({ id, cron: "0 0 0 1 1 *", timezone: "UTC", task: { persona: "reviewer", title: id }, nextFireAt });
      await store.schedules.upsert({ schedules: [schedule("yearly", now + 3_600_000), schedule("fired-out", now)], now });
      // Its last fire taken: no next fire left.
      await store.schedules.fire({ scheduleId: "fired-out", expectedNextFireAt: now, fireAts: [now], skipped: [], nextFireAt: null, by: "test", now });
      // Its persona retired: its next fire pauses it instead, as a supervisor's would.
      await store.schedules.upsert({ schedules: [{ ...schedule("orphan", now), task: { persona: "implementer", title: "orphan" } }], now });
      await store.personas.retire({ id: "implementer", retired: true, now });
      await store.schedules.fire({ scheduleId: "orphan", expectedNextFireAt: now, fireAts: [now], skipped: [], nextFireAt: now + 60_000, by: "test", now });
    } finally {
      await store.close();
    }
    const port = await freePort();
    url = `http://127.0.0.1:${port}/`;
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ROSTER_")) env[k] = v;
    child = spawn(process.execPath, [BIN, "ui", "--db", db, "--port", String(port)], { env, stdio: ["ignore", "pipe", "pipe"] });
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
    template?.cleanup();
  });

  /** The Schedules page's rows, cell texts by id, once the page shows `id`. */
  async function rows(waitFor: string): Promise<Record<string, string[]>> {
    await page.goto(`${url}#/schedules`);
    await page.getByRole("cell", { name: waitFor, exact: true }).waitFor({ timeout: 20_000 });
    const cells = await page.evaluate(() => [...document.querySelectorAll("tbody tr")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")));
    return Object.fromEntries(cells.map((c) => [c[0]!, c]));
  }

  it("shows a schedule with no next fire as such beside the others, and the API gives null", async () => {
    const api = (await (await fetch(new URL("api/schedules", url))).json()) as { schedules: Array<{ id: string; nextFireAt: number | null }> };
    expect(api.schedules.map((s) => [s.id, s.nextFireAt === null])).toEqual([
      ["fired-out", true],
      ["orphan", false],
      ["yearly", false],
    ]);
    const byId = await rows("fired-out");
    // columns: id, cron, task, next, last, missed, state
    expect(byId["fired-out"]![3]).toBe("no next fire");
    expect(byId["fired-out"]![6]).toBe("active (no next fire)");
    expect(byId.yearly![3]).toMatch(/\d/);
    expect(byId.yearly![6]).toBe("active");
    expect(out).not.toContain("page error");
  }, 60_000);

  it("says why a schedule is paused, as schedule ls does: its persona retired", async () => {
    const api = (await (await fetch(new URL("api/schedules", url))).json()) as { schedules: Array<{ id: string; state: string }> };
    expect(api.schedules.map((s) => [s.id, s.state])).toEqual([
      ["fired-out", "active (no next fire)"],
      ["orphan", 'paused (persona "implementer" retired)'],
      ["yearly", "active"],
    ]);
    const byId = await rows("orphan");
    expect(byId.orphan![3]).toBe("—");
    expect(byId.orphan![6]).toBe('paused (persona "implementer" retired)');
    expect(out).not.toContain("page error");
  }, 60_000);
});
