/**
 * Child processes of the chaos run (supervisors, the lock holder, the CLI) and
 * small timing helpers. A supervisor child carries its SupervisorRecord, filled
 * as the runner sees it become ready, pause and end.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { appendFileSync } from "node:fs";
import type { SupervisorRecord } from "./history.js";

const STDERR_TAIL = 4_000;

export interface Child {
  process: ChildProcess;
  ready: Promise<boolean>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
  /** Set once the ready line was seen. */
  isReady: boolean;
  /** stdout and stderr text seen so far (tails). */
  stdoutTail(): string;
  stderrTail(): string;
}

export function startChild(args: string[], logFile: string, label: string, readyPattern: RegExp, env?: NodeJS.ProcessEnv): Child {
  appendFileSync(logFile, `\n=== ${label} ${new Date().toISOString()}\n`);
  // Detached (a session of its own): a SIGSTOPped child in the runner's process group gets SIGHUP from the kernel when
  // another member exits and leaves the group orphaned, which would end a stopped supervisor that no fault meant to end.
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, ...(env === undefined ? {} : { env: { ...process.env, ...env } }) });
  let tail = "";
  let out = "";
  const state: Child = {
    process: child,
    exited: false,
    isReady: false,
    ready: new Promise<boolean>((resolve) => {
      const check = () => {
        if (state.isReady || !(readyPattern.test(out) || readyPattern.test(tail))) return;
        state.isReady = true;
        resolve(true);
      };
      child.stdout!.on("data", (d: Buffer) => {
        out = (out + d.toString()).slice(-STDERR_TAIL);
        check();
      });
      child.stderr!.on("data", (d: Buffer) => {
        appendFileSync(logFile, d);
        tail = (tail + d.toString()).slice(-STDERR_TAIL);
        check();
      });
      child.on("exit", () => resolve(false));
    }),
    exit: new Promise((resolve) =>
      child.on("exit", (code, signal) => {
        state.exited = true;
        resolve({ code, signal });
      }),
    ),
    stdoutTail: () => out,
    stderrTail: () => tail,
  };
  return state;
}

/**
 * A supervisor child and its record: readyAt and the agent id when its ready line
 * comes ("ready <agentId> <offset>" from supervisor.mjs, or the "supervisor
 * started" log line of `roster start`), endAt when the runner signals it or sees it exit.
 */
export function startSupervisor(params: {
  args: string[];
  logFile: string;
  label: string;
  binary: boolean;
  cycle: number;
  pollIntervalMs: number;
  concurrency: number;
  clockOffsetMs?: number;
  records: SupervisorRecord[];
}): { child: Child; record: SupervisorRecord } {
  const offset = params.clockOffsetMs ?? 0;
  const child = startChild(
    params.args,
    params.logFile,
    params.label,
    params.binary ? /"msg":"supervisor started"/ : /^ready \S+ -?\d+/m,
    offset === 0 ? undefined : { ROSTER_CLOCK_OFFSET_MS: String(offset) },
  );
  const record: SupervisorRecord = {
    label: params.label,
    cycle: params.cycle,
    pid: child.process.pid ?? -1,
    agentId: null,
    spawnAt: Date.now(),
    readyAt: null,
    endAt: null,
    pollIntervalMs: params.pollIntervalMs,
    concurrency: params.concurrency,
    pauses: [],
    clockOffsetMs: offset,
    measuredOffsetMs: null,
  };
  params.records.push(record);
  void child.ready.then((ready) => {
    if (!ready) return;
    record.readyAt = Date.now();
    if (params.binary) {
      const m = /"agentId":"([^"]+)"[^\n]*"msg":"supervisor started"/.exec(child.stderrTail());
      if (m !== null) record.agentId = m[1]!;
    } else {
      const m = /^ready (\S+) (-?\d+)/m.exec(child.stdoutTail());
      if (m !== null) {
        record.agentId = m[1]!;
        record.measuredOffsetMs = Number(m[2]);
      }
    }
  });
  void child.exit.then(() => {
    record.endAt ??= Date.now();
  });
  return { child, record };
}

/** Sends a signal that ends a supervisor's service (SIGTERM, SIGKILL) and records when. */
export function endSupervisor(child: Child, record: SupervisorRecord, signal: NodeJS.Signals): void {
  record.endAt ??= Date.now();
  child.process.kill(signal);
}

export function timeout(ms: number): { promise: Promise<"timeout">; cancel(): void } {
  let timer: NodeJS.Timeout;
  const promise = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  return { promise, cancel: () => clearTimeout(timer) };
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `node args…` to its end: exit code, stdout and stderr. */
export function runNode(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : null;
      resolve({ code, stdout, stderr });
    });
  });
}
