import { fileURLToPath } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { runProcess } from "../../src/adapters/agent/process.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { alive, until, within } from "./processes.js";

/**
 * The agent adapter's process runner shares the process-tree helper with the shell
 * adapter: an agent CLI's children (dev servers, watchers) end with its run.
 */
const SCRIPT = fileURLToPath(new URL("../fixtures/shell-bg-child.sh", import.meta.url));

let temp: TempDir | null = null;
const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  temp?.cleanup();
  temp = null;
});

describe.runIf(process.platform !== "win32")("agent CLI process trees", () => {
  it("settles a CLI's run when the CLI is killed, although its background child shares stdout, and ends the child", async () => {
    temp = makeTempDir("roster-agent-");
    const pidFile = temp.path("pids");
    const run = runProcess({ command: SCRIPT, args: [pidFile, "share", "wait"], cwd: temp.dir, env: process.env, stdin: null, signal: new AbortController().signal });
    expect(await until(() => existsSync(pidFile), 10_000)).toBe(true);
    const [cli, child] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number) as [number, number];
    leftovers.push(cli, child);
    process.kill(cli, "SIGKILL");
    const result = await within(run, 20_000, "the run");
    expect(result).toMatchObject({ exitCode: null, signal: "SIGKILL" });
    expect(alive(child)).toBe(false);
  });

  it("ends what a CLI left running when it exits 0, and keeps its output", async () => {
    temp = makeTempDir("roster-agent-");
    const pidFile = temp.path("pids");
    const result = await within(
      runProcess({ command: SCRIPT, args: [pidFile, "quiet", "exit"], cwd: temp.dir, env: process.env, stdin: null, signal: new AbortController().signal }),
      20_000,
      "the run",
    );
    const child = Number(readFileSync(pidFile, "utf8").trim().split(" ")[1]);
    leftovers.push(child);
    expect(result).toMatchObject({ exitCode: 0, stdout: '{"left":"a child running"}\n' });
    expect(alive(child)).toBe(false);
  });
});
