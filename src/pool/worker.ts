/**
 * The pool's worker entry: piscina calls the default export with a
 * RunBatchRequest (or, once per thread at start, a WarmUpRequest). Each task's adapter is loaded by its persona's adapter kind
 * (once per persona per thread) and run with ctx.signal, ctx.progress and
 * ctx.logger; every task of a batch runs concurrently, and the outcomes come back
 * as plain data. Aborts arrive on the control BroadcastChannel; progress and logs
 * leave through parentPort. Nothing here touches SQLite.
 */
import { BroadcastChannel, parentPort, threadId, workerData } from "node:worker_threads";
import { resolve } from "node:path";
import { loadAdapter, type AdapterEnvironment } from "../adapters/registry.js";
import { normalizeOutput } from "../adapters/output.js";
import type { Adapter, AdapterContext, AdapterLogger, AdapterPersona } from "../adapters/types.js";
import { askHumanFor } from "../adapters/human-input.js";
import { RosterError, fromErrorObject, toErrorObject, type ErrorObject } from "../errors.js";
import { RunUsage } from "./run-usage.js";
import {
  REPORT_ABORT_SEEN,
  REPORT_LOG,
  REPORT_OUTCOME,
  REPORT_PROGRESS,
  REPORT_USAGE,
  isControlMessage,
  isWarmUpRequest,
  type AbortSeenReport,
  type OutcomeReport,
  type RunBatchRequest,
  type RunBatchResponse,
  type TaskOutcome,
  type WarmUpRequest,
  type WarmUpResponse,
  type WorkerInit,
  type WorkerReport,
  type WorkerTask,
} from "./protocol.js";

const init = workerData as WorkerInit;
const personas = new Map<string, AdapterPersona>(init.personas.map((p) => [p.id, p]));
const env: AdapterEnvironment = {
  personasDir: resolve(init.personasDir),
  allowAbsoluteModules: init.allowAbsoluteModules,
  maxPayloadBytes: init.maxPayloadBytes,
  ...(init.database === undefined ? {} : { database: init.database }),
};
const threadSlots = new Int32Array(init.threadSlots);
const adapters = new Map<string, Promise<Adapter>>();
/**
 * The running attempts of this thread, by run id (RunBatchRequest.runIds), with the
 * abort reason once one came: the ErrorObject the main thread made once
 * (src/supervisor/attempts.ts), which the attempt's outcome carries back as it is.
 * The adapter's signal gets it rebuilt as an Error (an adapter sees an Error), once.
 */
const controllers = new Map<number, Run>();

/**
 * One running attempt's abort: the reason once one came, and the AbortController behind
 * ctx.signal, made only when the adapter reads ctx.signal (most short adapters never do,
 * and a controller per attempt was the busiest thing a thread did for no-op tasks).
 */
interface Run {
  controller: AbortController | null;
  reason: ErrorObject | null;
}
/**
 * Aborts that arrived before their attempt did (the two travel on different
 * channels). Aborts are broadcast to every thread, so most entries belong to
 * another thread's attempts; they are dropped after EARLY_ABORT_TTL_MS. Keyed by
 * run id, which no later attempt shares, so an entry left here can never abort
 * the task's next attempt.
 */
const earlyAborts = new Map<number, { reason: ErrorObject; at: number }>();
const EARLY_ABORT_TTL_MS = 30_000;

const LEVELS = ["debug", "info", "warn", "error"] as const;
const minLevel = init.logLevel === "silent" ? LEVELS.length : Math.max(0, LEVELS.indexOf(init.logLevel as (typeof LEVELS)[number]));

const control = new BroadcastChannel(init.controlChannel);
control.onmessage = (event: unknown) => {
  const message = (event as { data?: unknown }).data;
  if (!isControlMessage(message)) return;
  const now = Date.now();
  for (const [runId, early] of earlyAborts) if (now - early.at > EARLY_ABORT_TTL_MS) earlyAborts.delete(runId);
  const seen = message.runIds.filter((runId) => controllers.has(runId));
  // Said before the adapters hear of it: one that then blocks this thread leaves the answers to stop.
  if (seen.length > 0) report({ type: REPORT_ABORT_SEEN, runIds: seen });
  for (const runId of message.runIds) {
    const run = controllers.get(runId);
    if (run === undefined) earlyAborts.set(runId, { reason: message.reason, at: now });
    else abortRun(run, message.reason);
  }
};

/** The first abort of a run wins; the pool resends it until the run settles, and a resend changes nothing. */
function abortRun(run: Run, reason: ErrorObject): void {
  if (run.reason !== null) return;
  run.reason = reason;
  run.controller?.abort(fromErrorObject(reason));
}

/** ctx.signal, made on first use; already aborted (with the reason) if the abort came first. */
function signalOf(run: Run): AbortSignal {
  if (run.controller === null) {
    run.controller = new AbortController();
    if (run.reason !== null) run.controller.abort(fromErrorObject(run.reason));
  }
  return run.controller.signal;
}
// The pool terminates its threads; the channel must not keep one alive by itself.
control.unref();

/**
 * In a worker thread process.exit() would end the thread, and with it every task
 * it runs, not only the caller's. It throws instead: called inside an adapter's
 * run, it fails that attempt alone; called from a detached callback, the throw is
 * uncaught and ends the thread, whose tasks fail with WORKER_CRASHED naming it.
 * Node's own handling of an uncaught exception in a worker ends by calling
 * process.exit(); a throw there is fatal to the whole process (v8 "Empty
 * MaybeLocal"), so once an exception is on its way out the real exit runs.
 */
const realExit = process.exit.bind(process);
let uncaught = false;
process.on("uncaughtExceptionMonitor", () => {
  uncaught = true;
});
process.exit = ((code?: number | string | null) => {
  if (uncaught) return realExit(code ?? undefined);
  throw new RosterError("ADAPTER_FAILED", `the adapter called process.exit(${code === undefined ? "" : String(code)}), which a worker thread does not allow`, {
    retryable: false,
    details: { exitCode: code ?? null },
  });
}) as typeof process.exit;

/**
 * What an adapter threw, as an Error: a non-Error value (a string, an object,
 * undefined) becomes ADAPTER_FAILED with the value's JSON in the message.
 */
function adapterError(value: unknown): Error {
  if (value instanceof Error) return value;
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    try {
      text = String(value);
    } catch {
      text = `an unprintable ${typeof value}`;
    }
  }
  return new RosterError("ADAPTER_FAILED", `the adapter threw a non-Error value: ${text.length > 1000 ? `${text.slice(0, 1000)}…` : text}`, {
    details: { thrownType: value === null ? "null" : typeof value },
  });
}

function report(message: WorkerReport | OutcomeReport | AbortSeenReport): void {
  parentPort?.postMessage(message);
}

function adapterFor(personaId: string): Promise<Adapter> {
  let adapter = adapters.get(personaId);
  if (adapter === undefined) {
    const persona = personas.get(personaId);
    adapter =
      persona === undefined
        ? Promise.reject(new RosterError("PERSONA_NOT_FOUND", `persona "${personaId}" is not served by this pool`, { retryable: false }))
        : loadAdapter(persona, env);
    // A failed load is retried on the next task (the file may have been fixed).
    adapter.catch(() => adapters.delete(personaId));
    adapters.set(personaId, adapter);
  }
  return adapter;
}

/**
 * Loads every persona's adapter, so that no task's start waits on a module's import (tens of ms
 * for some; the latency bench's slowest samples were each thread's first task). Asked once per
 * thread as the pool starts (WarmUpRequest). A load that fails here is tried again, and
 * reported, with the first task.
 */
async function warmUp(): Promise<WarmUpResponse> {
  await Promise.all([...personas.keys()].map((personaId) => adapterFor(personaId).catch(() => undefined)));
  return { threadId };
}

function makeLogger(task: WorkerTask, runId: number): AdapterLogger {
  const log = (level: (typeof LEVELS)[number]) => (message: string, data?: Record<string, unknown>) => {
    if (LEVELS.indexOf(level) < minLevel) return;
    report({ type: REPORT_LOG, runId, taskId: task.id, attempt: task.attempt, level, message: String(message), ...(data === undefined ? {} : { data }) });
  };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

/** Progress, spaced at least progressIntervalMs apart per task; the latest value wins. */
function makeProgress(task: WorkerTask, runId: number, run: Run): { progress: AdapterContext["progress"]; close(): void } {
  let lastAt = 0;
  let pending: { fraction: number; message: string | null } | null = null;
  let timer: NodeJS.Timeout | null = null;
  const send = (value: { fraction: number; message: string | null }) => {
    lastAt = Date.now();
    report({ type: REPORT_PROGRESS, runId, taskId: task.id, attempt: task.attempt, fraction: value.fraction, message: value.message });
  };
  return {
    progress(fraction, message) {
      if (run.reason !== null) return;
      if (typeof fraction !== "number" || !Number.isFinite(fraction)) return;
      const value = { fraction: Math.min(1, Math.max(0, fraction)), message: message === undefined ? null : String(message) };
      const wait = lastAt + init.progressIntervalMs - Date.now();
      if (wait <= 0 && timer === null) {
        send(value);
        return;
      }
      pending = value;
      if (timer === null) {
        timer = setTimeout(() => {
          timer = null;
          if (pending !== null && run.reason === null) send(pending);
          pending = null;
        }, Math.max(0, wait));
      }
    },
    close() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      pending = null;
    },
  };
}

/** What each running attempt reports spending while it runs; it goes to the main thread as it comes, and with the attempt's outcome. */
const usageOf = new RunUsage((runId, total) => {
  const run = runsById.get(runId);
  if (run !== undefined) report({ type: REPORT_USAGE, runId, taskId: run.id, attempt: run.attempt, total });
});
/** The running attempts' tasks, by run id, for their usage reports. */
const runsById = new Map<number, WorkerTask>();

async function runOne(task: WorkerTask, runId: number): Promise<TaskOutcome> {
  runsById.set(runId, task);
  try {
    return usageOf.settle(runId, await runAttempt(task, runId));
  } finally {
    runsById.delete(runId);
  }
}

async function runAttempt(task: WorkerTask, runId: number): Promise<TaskOutcome> {
  const run: Run = { controller: null, reason: null };
  controllers.set(runId, run);
  const early = earlyAborts.get(runId);
  if (early !== undefined) {
    earlyAborts.delete(runId);
    abortRun(run, early.reason);
  }
  // Once aborted, the abort's reason (as the main thread sent it) is the outcome, whatever the adapter returned or threw.
  const aborted = (): TaskOutcome => ({ taskId: task.id, ok: false, error: run.reason!, aborted: true });
  // The signal, progress and logger are made when the adapter first uses them.
  const made: { progress: ReturnType<typeof makeProgress> | null; logger: AdapterLogger | null } = { progress: null, logger: null };
  try {
    const adapter = await adapterFor(task.persona);
    // Aborted while its adapter loaded (or before the task reached this thread): the adapter is not
    // started. It would get a signal already aborted, whose 'abort' event never fires, and one that
    // waits for that event would run on until its thread was terminated.
    if (run.reason !== null) return aborted();
    const ctx: AdapterContext = {
      askHuman: askHumanFor(task.inputs),
      get signal() {
        return signalOf(run);
      },
      reportUsage: (usage) => usageOf.add(runId, usage),
      reportUsageTotal: (usage) => usageOf.setTotal(runId, usage),
      progress: (fraction, message) => (made.progress ??= makeProgress(task, runId, run)).progress(fraction, message),
      get logger() {
        return (made.logger ??= makeLogger(task, runId));
      },
      persona: personas.get(task.persona)!,
    };
    const value = await adapter.run(task, ctx);
    if (run.reason !== null) return aborted();
    const output = normalizeOutput(value, init.maxPayloadBytes);
    return output.children === undefined
      ? { taskId: task.id, ok: true, resultJson: output.resultJson }
      : { taskId: task.id, ok: true, resultJson: output.resultJson, children: output.children };
  } catch (error) {
    if (run.reason !== null) return abortedWith(run.reason, error, task.id);
    return { taskId: task.id, ok: false, error: toErrorObject(adapterError(error)), aborted: false };
  } finally {
    made.progress?.close();
    controllers.delete(runId);
  }
}

/**
 * An aborted attempt's outcome: the abort's reason, with the details the adapter put on the
 * error it threw for that abort (an agent's session and saved work: src/adapters/agent/index.ts),
 * so its next attempt can continue it. The reason's own details win.
 */
function abortedWith(reason: ErrorObject, thrown: unknown, taskId: number): TaskOutcome {
  const details = thrown instanceof RosterError && thrown.code === reason.code ? thrown.details : undefined;
  const error = details === undefined || Object.keys(details).length === 0 ? reason : { ...reason, details: { ...details, ...(reason.details ?? {}) } };
  return { taskId, ok: false, error, aborted: true };
}

/** A newer definition of a persona (hot reload): replace ours, and reload its adapter on next use. */
function refreshPersonas(defs: readonly AdapterPersona[]): void {
  for (const def of defs) {
    const current = personas.get(def.id);
    if (current !== undefined && JSON.stringify(current) === JSON.stringify(def)) continue;
    personas.set(def.id, def);
    adapters.delete(def.id);
  }
}

export default function handle(request: RunBatchRequest | WarmUpRequest): Promise<RunBatchResponse | WarmUpResponse> {
  return isWarmUpRequest(request) ? warmUp() : runBatch(request);
}

async function runBatch(request: RunBatchRequest): Promise<RunBatchResponse> {
  Atomics.store(threadSlots, request.slot, threadId);
  if (request.personas !== undefined) refreshPersonas(request.personas);
  const runIds = request.runIds;
  if (request.tasks.length === 1) return { outcomes: [await runOne(request.tasks[0]!, runIds[0]!)] };
  const run =
    request.reportEach === true
      ? (task: WorkerTask, i: number) => runOne(task, runIds[i]!).then((outcome) => reportOutcome(request.batchId, outcome))
      : (task: WorkerTask, i: number) => runOne(task, runIds[i]!);
  return { outcomes: await Promise.all(request.tasks.map(run)) };
}

let outcomesToReport: OutcomeReport["outcomes"] = [];

/** Queues an outcome for the report sent after this turn, with every other outcome that settles in it. */
function reportOutcome(batchId: number, outcome: TaskOutcome): TaskOutcome {
  if (outcomesToReport.length === 0) {
    setImmediate(() => {
      const outcomes = outcomesToReport;
      outcomesToReport = [];
      report({ type: REPORT_OUTCOME, outcomes });
    });
  }
  outcomesToReport.push({ batchId, outcome });
  return outcome;
}
