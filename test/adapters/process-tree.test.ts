import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { WATCHDOG_MARKER, spawnTree } from "../../src/adapters/process-tree.js";

const PARENT = fileURLToPath(new URL("../fixtures/spawn-tree-parent.mjs", import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Polls (the process is not ours to wait on) until `check` holds or the time is up. */
async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
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
    expect(await until(() => !pids.some(alive), 10_000)).toBe(true);
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
});
