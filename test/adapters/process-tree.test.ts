import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { spawnTree } from "../../src/adapters/process-tree.js";
import { WATCHDOG_MARKER } from "../../src/adapters/watchdog.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { alive, processesWithEnv, until } from "./processes.js";

// The fixtures run the built helper (dist/): build before running these.
const PARENT = fileURLToPath(new URL("../fixtures/spawn-tree-parent.mjs", import.meta.url));
const SIGINT_PARENT = fileURLToPath(new URL("../fixtures/spawn-tree-sigint.mjs", import.meta.url));
const BURST_PARENT = fileURLToPath(new URL("../fixtures/spawn-tree-burst.mjs", import.meta.url));
const BLOCKED_PARENT = fileURLToPath(new URL("../fixtures/spawn-tree-blocked.mjs", import.meta.url));

/** Collects a child's stdout lines; `line(re)` resolves with the first line matching `re` (seen already or to come). */
function lines(child: ChildProcess): { all: string[]; line(re: RegExp): Promise<string> } {
  const all: string[] = [];
  const waiting: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
  let buffer = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      all.push(line);
      for (const w of waiting.splice(0)) if (w.re.test(line)) w.resolve(line);
      else waiting.push(w);
    }
  });
  return {
    all,
    line: (re) =>
      new Promise((resolve, reject) => {
        const seen = all.find((l) => re.test(l));
        if (seen !== undefined) resolve(seen);
        else waiting.push({ re, resolve });
        child.once("exit", (code) => reject(new Error(`exited (${code}) before printing a line matching ${re}; printed: ${all.join(" | ")}`)));
      }),
  };
}

let temp: TempDir | null = null;
const parents: ChildProcess[] = [];

const leftovers: number[] = [];
afterEach(() => {
  for (const parent of parents.splice(0)) if (parent.exitCode === null && parent.signalCode === null) parent.kill("SIGKILL");
  for (const pid of leftovers.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  temp?.cleanup();
  temp = null;
});

describe("spawnTree", () => {
  it.runIf(process.platform !== "win32")("ends every child's tree when the process that spawned them is killed with SIGKILL", async () => {
    const parent = spawn(process.execPath, [PARENT], { stdio: ["ignore", "pipe", "inherit"] });
    const pids = await new Promise<number[]>((resolve, reject) => {
      let out = "";
      parent.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const found = [...out.matchAll(/child (\d+)/g)].map((m) => Number(m[1]));
        if (found.length === 2) resolve(found);
      });
      parent.on("exit", (code) => reject(new Error(`the parent exited with ${code} before starting its children`)));
    });
    leftovers.push(...pids);
    expect(pids.every(alive)).toBe(true);

    parent.kill("SIGKILL");
    await new Promise((resolve) => parent.on("exit", resolve));
    // The crash suite saw 31 of 38 shell attempts of killed supervisors run on to the end without this.
    expect(await until(() => !pids.some(alive), 30_000)).toBe(true);
  });

  it.runIf(process.platform !== "win32")("ends a killed leader's group while the process that spawned it cannot turn its event loop", async () => {
    // The crash suite's orphan: a shell task's leader was killed with SIGKILL while a
    // hung module adapter held its worker thread in a busy loop, so the adapter never
    // saw the exit, and the leader's grandchildren ran to their own end.
    const parent = spawn(process.execPath, [BLOCKED_PARENT], { stdio: ["pipe", "pipe", "inherit"] });
    parents.push(parent);
    const out = lines(parent);
    const leader = Number((await out.line(/^leader \d+$/)).split(" ")[1]);
    await out.line(/^grandchild \d+$/);
    const grandchildren = await new Promise<number[]>((resolve) => {
      const check = (): void => {
        const found = out.all.filter((l) => l.startsWith("grandchild ")).map((l) => Number(l.split(" ")[1]));
        if (found.length === 2) resolve(found);
        else setTimeout(check, 10);
      };
      check();
    });
    leftovers.push(leader, ...grandchildren);
    expect([leader, ...grandchildren].every(alive)).toBe(true);

    // Held for a minute: far longer than the watchdog may take on a loaded machine (the bound below).
    parent.stdin!.write("spin 60000\n");
    await out.line(/^spinning$/); // the parent's event loop is held now
    process.kill(leader, "SIGKILL");
    const gone = await until(() => !grandchildren.some(alive), 30_000);
    // Gone while the parent was still held: nobody but the watchdog could have ended them.
    expect(out.all).not.toContain("spun");
    expect(gone).toBe(true);
  });

  it.runIf(process.platform === "linux")("watches every tree a process spawns with one watchdog process", async () => {
    const children = Array.from({ length: 4 }, () => spawnTree(process.execPath, ["-e", "setTimeout(() => {}, 200)"], { stdio: "ignore" }));
    const watchdogs = readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
          return ppid === process.pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(WATCHDOG_MARKER);
        } catch {
          return false; // gone while we looked
        }
      });
    expect(watchdogs).toHaveLength(1);
    await Promise.all(children.map((child) => new Promise((resolve) => child.on("exit", resolve))));
  });

  it("leaves a child that exits on its own to exit normally, with its output", async () => {
    const child = spawnTree(process.execPath, ["-e", "process.stdout.write('out')"], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code).toBe(0);
    expect(out).toBe("out");
  });

  it.runIf(process.platform !== "win32")("keeps the watchdog through a terminal's Ctrl-C, and ends every tree when a second one ends the spawning process", async () => {
    temp = makeTempDir("roster-tree-");
    // detached: the parent leads a process group, as `roster start` does in a terminal's foreground.
    const parent = spawn(process.execPath, [SIGINT_PARENT, temp.dir], { stdio: ["ignore", "pipe", "inherit"], detached: true });
    parents.push(parent);
    const out = lines(parent);
    await out.line(/^ready$/);
    const trees = out.all.filter((l) => l.startsWith("tree ")).flatMap((l) => l.split(" ").slice(1).map(Number));
    const watchdog = Number((await out.line(/^watchdog \d+$/)).split(" ")[1]);
    leftovers.push(...trees, watchdog);
    expect(trees).toHaveLength(4);
    expect(trees.every(alive)).toBe(true);
    const exited = new Promise<number | null>((resolve) => parent.once("exit", resolve));

    process.kill(-parent.pid!, "SIGINT");
    await out.line(/^stopping$/);
    // Before: the watchdog was in the parent's process group, and this first Ctrl-C ended it.
    expect(alive(watchdog)).toBe(true);
    process.kill(-parent.pid!, "SIGINT");
    expect(await exited).toBe(130);
    expect(await until(() => !trees.some(alive), 10_000)).toBe(true);
  });

  it.runIf(process.platform === "linux")("leaves no tree alive when the spawning process is killed with SIGKILL while its threads are spawning", async () => {
    temp = makeTempDir("roster-tree-");
    const mark = randomUUID();
    // Four rounds, each killed at another point of its burst: a kill inside spawn(), or between a
    // tree's spawn and its registration, left that tree running on the previous code in about one round of three.
    for (const killAt of [6, 10, 14, 18]) {
      const parent = spawn(process.execPath, [BURST_PARENT, temp.dir, "20", "2"], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ROSTER_TEST_BURST: mark } });
      parents.push(parent);
      const exited = new Promise((resolve) => parent.once("exit", resolve));
      let seen = 0;
      parent.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        seen += chunk.split("\n").length - 1;
        if (seen >= killAt) parent.kill("SIGKILL");
      });
      await exited;
    }
    // Every process of every tree carries the mark, announced or not (the parents' watchdogs too, until they end).
    const gone = await until(() => processesWithEnv("ROSTER_TEST_BURST", mark).length === 0, 15_000);
    const left = processesWithEnv("ROSTER_TEST_BURST", mark);
    leftovers.push(...left);
    expect(gone, `left running: ${left.join(", ")}`).toBe(true);
  });
});
