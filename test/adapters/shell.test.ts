import { fileURLToPath } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { createAdapter, parseProgressLine, SHELL_EXIT_NO_RETRY, STDERR_TAIL_CHARS } from "../../src/adapters/shell.js";
import type { AdapterContext, AdapterPersona, AdapterTask } from "../../src/adapters/types.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { alive, until, within } from "./processes.js";

/**
 * The shell adapter, run for real: real scripts (test/fixtures/*.sh) as real
 * process trees. What a script may rely on is docs/shell-adapter.md.
 */
const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
const POSIX = process.platform !== "win32";

function persona(script: string, args: string[]): AdapterPersona {
  return { id: "sh", name: "sh", definition: "", adapter: { kind: "shell", command: `./${script}`, args } as never, dir: FIXTURES };
}

function task(overrides: Partial<AdapterTask> = {}): AdapterTask {
  return { id: 7, title: "t", description: "", persona: "sh", payload: { n: 1 }, priority: 0, parentId: null, attempt: 2, maxAttempts: 3, timeoutMs: 600_000, dependencies: [], ...overrides };
}

interface Run {
  outcome: Promise<unknown>;
  progress: Array<[number, string | undefined]>;
  warnings: string[];
  controller: AbortController;
}

function run(script: string, args: string[]): Run {
  const controller = new AbortController();
  const progress: Array<[number, string | undefined]> = [];
  const warnings: string[] = [];
  const ctx: AdapterContext = {
    signal: controller.signal,
    progress: (fraction, message) => progress.push([fraction, message]),
    logger: { debug: () => undefined, info: () => undefined, warn: (message) => warnings.push(message), error: () => undefined },
    persona: persona(script, args),
  };
  const adapter = createAdapter(ctx.persona, { personasDir: FIXTURES, allowAbsoluteModules: false, maxPayloadBytes: 1_000_000 });
  const outcome = Promise.resolve(adapter.run(task(), ctx));
  outcome.catch(() => undefined);
  return { outcome, progress, warnings, controller };
}

async function failure(outcome: Promise<unknown>): Promise<RosterError> {
  const error = await within(outcome.then(() => null, (e: unknown) => e), 20_000, "the attempt's outcome");
  expect(error).toBeInstanceOf(RosterError);
  return error as RosterError;
}

let temp: TempDir | null = null;
const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  temp?.cleanup();
  temp = null;
});

/** Starts shell-bg-child.sh and returns its run with the script's and the child's pids. */
async function startWithChild(mode: "share" | "quiet", end: "exit" | "wait"): Promise<Run & { script: number; child: number }> {
  temp = makeTempDir("roster-shell-");
  const pidFile = temp.path("pids");
  const r = run("shell-bg-child.sh", [pidFile, mode, end]);
  expect(await until(() => existsSync(pidFile), 10_000)).toBe(true);
  const [script, child] = readFileSync(pidFile, "utf8").trim().split(" ").map(Number) as [number, number];
  leftovers.push(script, child);
  return { ...r, script, child };
}

describe.runIf(POSIX)("shell adapter: a script's children end with its attempt", () => {
  for (const mode of ["quiet", "share"] as const) {
    const how = mode === "share" ? "that shares its stdout" : "with stdout elsewhere";
    it(`fails the attempt at once when the script is killed, and ends its background child ${how}`, async () => {
      const r = await startWithChild(mode, "wait");
      expect(alive(r.child)).toBe(true);
      process.kill(r.script, "SIGKILL");
      // Before: a child sharing stdout held the attempt until it ended (timeoutMs); one that did not ran on beside the retry.
      const error = await failure(r.outcome);
      expect(error.code).toBe("ADAPTER_FAILED");
      expect(error.retryable).toBe(true);
      expect(error.details).toMatchObject({ exitCode: null, signal: "SIGKILL" });
      // The outcome is reported once the group is gone, not before.
      expect(alive(r.child)).toBe(false);
    });

    it(`completes with the result of a script that exits, and ends the child it left running ${how}`, async () => {
      const r = await startWithChild(mode, "exit");
      expect(await within(r.outcome, 20_000, "the attempt's outcome")).toEqual({ left: "a child running" });
      expect(alive(r.child)).toBe(false);
    });
  }

  it("ends the script and its child on abort, and fails with the abort's reason", async () => {
    const r = await startWithChild("share", "wait");
    const reason = new RosterError("TIMEOUT", "timed out");
    r.controller.abort(reason);
    expect(await failure(r.outcome)).toBe(reason);
    expect(alive(r.script)).toBe(false);
    expect(alive(r.child)).toBe(false);
  });
});

describe.runIf(POSIX)("shell adapter: the contract", () => {
  it("gives the script the task on stdin and the ROSTER_* variables, and parses its JSON stdout as the result", async () => {
    const result = await run("shell-contract.sh", ["ok"]).outcome;
    expect(result).toEqual({
      task: expect.objectContaining({ id: 7, persona: "sh", payload: { n: 1 }, attempt: 2 }),
      env: { id: "7", attempt: "2", maxAttempts: "3", persona: "sh", timeoutMs: "600000", noRetry: String(SHELL_EXIT_NO_RETRY) },
    });
  });

  it("forwards progress lines on stderr to ctx.progress, the last one without a newline too", async () => {
    const r = run("shell-contract.sh", ["ok"]);
    await r.outcome;
    expect(r.progress).toEqual([
      [0.25, "reading the task"],
      [0.5, undefined],
      [0.75, "no newline at the end"],
    ]);
  });

  it("keeps a malformed progress line as stderr, with a warning", async () => {
    const r = run("shell-contract.sh", ["fail"]);
    const error = await failure(r.outcome);
    expect(error.message).toContain("::roster:progress 7 not a fraction");
    expect(r.warnings).toHaveLength(1);
  });

  it("fails the attempt as retryable on another non-zero exit, with the tail of stderr and no progress lines in it", async () => {
    const error = await failure(run("shell-contract.sh", ["fail"]).outcome);
    expect(error.code).toBe("ADAPTER_FAILED");
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ exitCode: 3 });
    const stderr = (error.details as { stderr: string }).stderr;
    expect(stderr).toContain("an ordinary stderr line");
    expect(stderr).toContain("something went wrong");
    expect(stderr).not.toContain("reading the task");
    expect(stderr).not.toContain("no newline at the end");
    expect(stderr.length).toBeLessThanOrEqual(STDERR_TAIL_CHARS);
  });

  it("fails the task without a retry when the script exits with ROSTER_EXIT_NO_RETRY", async () => {
    const error = await failure(run("shell-contract.sh", ["no-retry"]).outcome);
    expect(error.code).toBe("ADAPTER_FAILED");
    expect(error.retryable).toBe(false);
    expect(error.details).toMatchObject({ exitCode: SHELL_EXIT_NO_RETRY });
    expect(error.message).toContain("the input cannot be used");
  });
});

describe("parseProgressLine", () => {
  it("reads a fraction and an optional message", () => {
    expect(parseProgressLine("::roster:progress 0.5 half of it")).toEqual({ fraction: 0.5, message: "half of it" });
    expect(parseProgressLine("::roster:progress 1")).toEqual({ fraction: 1 });
    expect(parseProgressLine("::roster:progress 0 ")).toEqual({ fraction: 0 });
  });

  it("refuses what is not a progress line or not a fraction from 0 to 1", () => {
    for (const line of ["::roster:progress", "::roster:progress1", "::roster:progress -0.1", "::roster:progress 1.5", "::roster:progress half", "progress 0.5", " ::roster:progress 0.5"]) {
      expect(parseProgressLine(line), line).toBeNull();
    }
  });
});
