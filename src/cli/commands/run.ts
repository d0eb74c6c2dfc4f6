import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import type { Command } from "commander";
import { normalizeOutput } from "../../adapters/output.js";
import { adapterTask } from "../../adapters/task-view.js";
import { loadAdapter, type AdapterEnvironment } from "../../adapters/registry.js";
import type { Adapter, AdapterContext, AdapterPersona, AdapterTask } from "../../adapters/types.js";
import { systemClock } from "../../clock.js";
import type { Config } from "../../config.js";
import { ERROR_CODES, LeaseLostError, RosterError, coerceError, toErrorObject, type ErrorCode, type ErrorObject } from "../../errors.js";
import { createLogger, type Logger } from "../../logging/logger.js";
import { fromPersonaRecord, loadPersonaDir, toAdapterPersona, toPersonaUpsert } from "../../personas/load.js";
import type { Persona } from "../../personas/schema.js";
import type { ClaimedTask, Json, Store } from "../../store/index.js";
import { PRIORITY_MAX, TITLE_MAX } from "../../store/input.js";
import { unknownNameHint } from "../../store/suggest.js";
import { pruneWorkspacesAtStart } from "../../workspace/startup.js";
import { printError, printJson } from "../output.js";
import { addDbOption, addJsonOption, addPersonasOption, configFrom, withStore, type DbOptions, type JsonOptions, type PersonasOptions } from "../options.js";

/**
 * `roster run --persona P "prompt"`: direct launching. One task, run now by this
 * process through the persona's adapter (the same one the supervisor's workers
 * load), without a supervisor, and recorded like any other: enqueued, claimed by
 * a one-off agent, started, heartbeated, then completed or failed (a planner's
 * child tasks are enqueued as usual, for a supervisor to run). A retryable
 * failure is retried here after its backoff until the attempts are used up,
 * unless --no-retry. Ctrl-C (SIGINT or SIGTERM) stops the CLI and cancels the
 * task, recorded as the user's interruption (the `task:cancelled` event's reason),
 * so a later `roster start` does not run what the user aborted; exit 130.
 *
 * A database is created only when there is something to run: a persona that
 * no file defines, in a database that does not exist yet, leaves no file.
 */
interface RunOptions extends DbOptions, JsonOptions, PersonasOptions {
  persona: string;
  title?: string;
  retry: boolean;
  logLevel?: string;
}

/** The `task:cancelled` reason of a run the user interrupted. */
export const INTERRUPTED_REASON = "interrupted by the user (Ctrl-C / SIGINT or SIGTERM to roster run)";

/**
 * How long a failure that looks like the user's Ctrl-C (the CLI died of SIGINT
 * or SIGTERM) waits for roster's own signal handler, in ms: a terminal's Ctrl-C
 * reaches the CLI and roster together, and the CLI's exit may be seen first.
 */
const INTERRUPT_SETTLE_MS = 500;

interface RunOutcome {
  taskId: number;
  /** `cancelled`: the user interrupted the run (Ctrl-C), and the task was cancelled. */
  status: "completed" | "failed" | "cancelled";
  attempts: number;
  result: Json | null;
  error: ErrorObject | null;
  childIds: number[];
}

export function register(program: Command): void {
  const command = program
    .command("run")
    .description("run one task now through a persona's adapter (e.g. a real agent CLI), without the supervisor, recorded in the database")
    .argument("<prompt>", "what to do: the task's description (its title is the first line unless --title)")
    .requiredOption("--persona <id>", "persona whose adapter runs the task")
    .option("--title <text>", "task title (default: the prompt's first line)")
    .option("--no-retry", "fail at the first failed attempt instead of retrying after the backoff")
    .option("--log-level <level>", "log level on stderr (default warn)");
  addDbOption(command);
  addPersonasOption(command);
  addJsonOption(command);
  command.action(async (prompt: string, options: RunOptions) => {
    const config = configFrom(options, options.logLevel === undefined ? { logLevel: "warn" } : { logLevel: options.logLevel as Config["logLevel"] });
    if (prompt.trim() === "") throw new RosterError("VALIDATION", "<prompt>: must not be empty", { details: { field: "prompt" } });
    const title = (options.title ?? prompt.trim().split(/\r?\n/)[0]!).slice(0, TITLE_MAX);
    const logger = createLogger({ level: config.logLevel, name: "roster-run" });
    const outcome = await runOnce(config, { personaId: options.persona, title, description: prompt, retry: options.retry, logger });
    if (options.json) printJson(outcome);
    else printOutcome(outcome);
    process.exitCode = outcome.status === "completed" ? 0 : outcome.status === "cancelled" ? 130 : 1;
  });
}

function printOutcome(outcome: RunOutcome): void {
  if (outcome.status === "completed") {
    const result = outcome.result;
    const text =
      typeof result === "string"
        ? result
        : result !== null && typeof result === "object" && !Array.isArray(result) && typeof result.text === "string"
          ? result.text
          : JSON.stringify(result, null, 2);
    process.stdout.write(`${text}\n`);
    const children = outcome.childIds.length > 0 ? `; enqueued child tasks ${outcome.childIds.join(", ")}` : "";
    process.stderr.write(`roster: task ${outcome.taskId} completed (attempt ${outcome.attempts})${children}\n`);
    return;
  }
  if (outcome.status === "cancelled") {
    process.stderr.write(`roster: task ${outcome.taskId} cancelled: ${INTERRUPTED_REASON}\n`);
    return;
  }
  if (outcome.error !== null) printError(new RosterError(isErrorCode(outcome.error.code) ? outcome.error.code : "ADAPTER_FAILED", outcome.error.message));
  process.stderr.write(`roster: task ${outcome.taskId} ${outcome.status} after ${outcome.attempts} attempt(s)\n`);
}

function isErrorCode(code: unknown): code is ErrorCode {
  return (ERROR_CODES as readonly unknown[]).includes(code);
}

/** Persona files (validated and synced, as `start` does) with the database as fallback. */
async function findPersona(store: Store, config: Config, id: string, now: number): Promise<Persona> {
  if (existsSync(config.personasDir)) {
    const files = loadPersonaDir(config.personasDir);
    await store.personas.sync({ personas: files.map(toPersonaUpsert), now, sourceDir: resolve(config.personasDir) });
    const found = files.find((p) => p.id === id);
    if (found !== undefined) return found;
  }
  const record = await store.personas.get({ id });
  if (record !== null) return fromPersonaRecord(record);
  const known = (await store.personas.list()).map((p) => p.id);
  throw new RosterError("PERSONA_NOT_FOUND", `--persona: no persona "${id}" in ${config.personasDir} or the database${unknownNameHint(id, known)}`, {
    details: { field: "persona", persona: id },
  });
}

async function runOnce(
  config: Config,
  params: { personaId: string; title: string; description: string; retry: boolean; logger: Logger },
): Promise<RunOutcome> {
  if (config.dbPath !== ":memory:" && !existsSync(config.dbPath)) {
    // A new database only for a persona that a file defines: bad input writes nothing.
    const files = existsSync(config.personasDir) ? loadPersonaDir(config.personasDir) : [];
    if (!files.some((p) => p.id === params.personaId)) {
      const known = files.map((p) => p.id);
      throw new RosterError(
        "PERSONA_NOT_FOUND",
        `--persona: no persona "${params.personaId}" in ${config.personasDir}, and no database at ${config.dbPath}${unknownNameHint(params.personaId, known)}`,
        { details: { field: "persona", persona: params.personaId } },
      );
    }
  }
  return withStore(config, "create", (store) => runWithStore(store, config, params));
}

async function runWithStore(
  store: Store,
  config: Config,
  params: { personaId: string; title: string; description: string; retry: boolean; logger: Logger },
): Promise<RunOutcome> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort(new RosterError("SHUTDOWN", INTERRUPTED_REASON));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let agentId: string | null = null;
  let taskId: number | null = null;
  try {
    const now = systemClock.now();
    const persona = await findPersona(store, config, params.personaId, now);
    await pruneWorkspacesAtStart({ store, personas: [persona], now, logger: params.logger });
    const adapterPersona = toAdapterPersona(persona);
    const env: AdapterEnvironment = {
      personasDir: config.personasDir,
      allowAbsoluteModules: config.allowAbsoluteModules,
      maxPayloadBytes: config.maxPayloadBytes,
    };
    // The same registry the pool's worker threads load adapters from; here it runs in this process.
    const adapter: Adapter = await loadAdapter(adapterPersona, env);
    const { ids } = await store.tasks.enqueue({
      tasks: [{ persona: persona.id, title: params.title, description: params.description, priority: PRIORITY_MAX }],
      createdBy: "cli:run",
      now,
    });
    taskId = ids[0]!;
    const agent = await store.agents.register({
      name: `roster run (pid ${process.pid})`,
      kind: "cli",
      personaId: persona.id,
      pid: process.pid,
      hostname: hostname(),
      heartbeatTimeoutMs: persona.leaseMs,
      now: systemClock.now(),
    });
    agentId = agent.id;
    let attempts = 0;
    for (;;) {
      const claimed = await claimOwn(store, { taskId, persona: persona.id, agentId, leaseMs: persona.leaseMs });
      if (claimed === null) {
        const followed = await waitForOther(store, taskId, stop.signal);
        return followed ?? (await cancelInterrupted(store, taskId, agentId, attempts));
      }
      attempts = claimed.attempt;
      const settled = await runAttempt(store, adapter, adapterPersona, claimed, { agentId, leaseMs: persona.leaseMs, retry: params.retry, stop: stop.signal, logger: params.logger, maxPayloadBytes: config.maxPayloadBytes });
      if (settled.kind === "done") return { taskId, attempts, ...settled.outcome };
      if (settled.kind === "interrupted") return await cancelInterrupted(store, taskId, agentId, attempts);
      // A retryable failure: wait out the backoff, then claim the task again.
      process.stderr.write(
        `roster: attempt ${attempts} of task ${taskId} failed (${settled.error.code ?? "ADAPTER_FAILED"}: ${settled.error.message}); retrying in ${formatMs(settled.runAt - systemClock.now())}\n`,
      );
      await sleepUntil(settled.runAt, stop.signal);
      if (stop.signal.aborted) return await cancelInterrupted(store, taskId, agentId, attempts);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (agentId !== null) await store.agents.deregister({ agentId, now: systemClock.now() });
  }
}

/** The user interrupted the run: the task is cancelled (whatever state it is in), with the reason in its event. */
async function cancelInterrupted(store: Store, taskId: number, agentId: string, attempts: number): Promise<RunOutcome> {
  const task = await store.tasks.get({ taskId, eventLimit: 0 });
  if (task.status !== "completed" && task.status !== "failed" && task.status !== "cancelled") {
    await store.tasks.cancel({ taskId, reason: INTERRUPTED_REASON, by: agentId, now: systemClock.now() });
  }
  const error = toErrorObject(new RosterError("ABORTED", INTERRUPTED_REASON));
  return { taskId, status: "cancelled", attempts: Math.max(attempts, task.attempts), result: null, error, childIds: [] };
}

function formatMs(ms: number): string {
  const value = Math.max(0, ms);
  return value < 1_000 ? `${Math.round(value)} ms` : `${(value / 1_000).toFixed(1)} s`;
}

/**
 * Claims this task. The claim takes the best ready task of the persona; this one
 * has the top priority, but older top-priority tasks of the persona come first:
 * those are given back at once (the attempt does not count) and the claim widens.
 */
async function claimOwn(store: Store, p: { taskId: number; persona: string; agentId: string; leaseMs: number }): Promise<ClaimedTask | null> {
  for (const limit of [1, 16, 256]) {
    const tasks = await store.tasks.claim({ persona: p.persona, agentId: p.agentId, leaseMs: p.leaseMs, limit, now: systemClock.now() });
    const own = tasks.find((t) => t.id === p.taskId) ?? null;
    for (const other of tasks) {
      if (other !== own) await store.tasks.releaseIfLeased({ taskId: other.id, leaseToken: other.leaseToken, reason: "claimed by roster run for another task", now: systemClock.now() });
    }
    if (own !== null) return own;
    const state = (await store.tasks.get({ taskId: p.taskId, eventLimit: 0 })).status;
    if (state !== "pending") return null;
  }
  throw new RosterError("INVALID_STATE", `task ${p.taskId}: could not claim it ahead of other top-priority tasks of persona "${p.persona}"; run \`roster start\` to work through them`);
}

/** Someone else (a running supervisor) took the task: follow it to its end; null when interrupted. */
async function waitForOther(store: Store, taskId: number, signal: AbortSignal): Promise<RunOutcome | null> {
  for (;;) {
    const task = await store.tasks.get({ taskId, eventLimit: 0 });
    if (task.status === "completed" || task.status === "failed" || task.status === "cancelled") {
      return {
        taskId,
        status: task.status === "completed" ? "completed" : "failed",
        attempts: task.attempts,
        result: task.result,
        error: task.error,
        childIds: task.children.map((c) => c.id),
      };
    }
    await sleepUntil(systemClock.now() + 500, signal);
    if (signal.aborted) return null;
  }
}

type Settled =
  | { kind: "done"; outcome: Omit<RunOutcome, "taskId" | "attempts"> }
  | { kind: "retrying"; runAt: number; error: ErrorObject }
  | { kind: "interrupted" };

/** The CLI died of the signal a Ctrl-C sends (which the terminal sent to roster as well). */
function diedOfInterrupt(error: Error): boolean {
  const details = error instanceof RosterError ? error.details : undefined;
  return details?.signal === "SIGINT" || details?.signal === "SIGTERM";
}

/** Resolves when `signal` aborts or after `ms`, whichever comes first. */
function abortedWithin(signal: AbortSignal, ms: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(false);
    }, ms);
    function onAbort(): void {
      clearTimeout(timer);
      resolve(true);
    }
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

async function runAttempt(
  store: Store,
  adapter: Adapter,
  persona: AdapterPersona,
  task: ClaimedTask,
  o: { agentId: string; leaseMs: number; retry: boolean; stop: AbortSignal; logger: Logger; maxPayloadBytes: number },
): Promise<Settled> {
  const lease = { taskId: task.id, leaseToken: task.leaseToken };
  if (!(await store.tasks.startIfLeased({ ...lease, now: systemClock.now() })).ok) throw new LeaseLostError(task.id);
  const controller = new AbortController();
  const abort = (reason: Error): void => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onStop = (): void => abort(coerceError(o.stop.reason));
  o.stop.addEventListener("abort", onStop, { once: true });
  const timeout = setTimeout(() => abort(new RosterError("TIMEOUT", `task ${task.id} attempt ${task.attempt} timed out after ${task.timeoutMs} ms`)), task.timeoutMs);
  const heartbeat = setInterval(() => {
    store.agents
      .heartbeat({ agentId: o.agentId, now: systemClock.now(), leases: [lease] })
      .then((beat) => {
        if (beat.lost.length > 0) abort(new LeaseLostError(task.id));
      })
      .catch((error: unknown) => o.logger.warn({ err: coerceError(error) }, "heartbeat failed"));
  }, Math.max(100, Math.floor(o.leaseMs / 3)));
  const log = o.logger.child({ taskId: task.id, persona: task.persona, attempt: task.attempt, agentId: o.agentId });
  const ctx: AdapterContext = {
    signal: controller.signal,
    progress: (fraction, message) => {
      store.tasks
        .progressIfLeased({ ...lease, fraction: Math.min(1, Math.max(0, fraction)), ...(message === undefined ? {} : { message }), now: systemClock.now() })
        .catch((error: unknown) => log.warn({ err: coerceError(error) }, "progress not recorded"));
    },
    logger: {
      debug: (message, data) => log.debug(data ?? {}, message),
      info: (message, data) => log.info(data ?? {}, message),
      warn: (message, data) => log.warn(data ?? {}, message),
      error: (message, data) => log.error(data ?? {}, message),
    },
    persona,
  };
  let value: unknown;
  let failure: Error | null = null;
  try {
    value = await adapter.run(adapterTask(task), ctx);
  } catch (error) {
    failure = coerceError(error);
  } finally {
    clearTimeout(timeout);
    clearInterval(heartbeat);
    o.stop.removeEventListener("abort", onStop);
  }
  // Interrupted by the user (also when the CLI's death from the same Ctrl-C was seen first): the caller cancels the task.
  if (o.stop.aborted || (failure !== null && diedOfInterrupt(failure) && (await abortedWithin(o.stop, INTERRUPT_SETTLE_MS)))) {
    return { kind: "interrupted" };
  }
  const now = systemClock.now();
  if (failure === null) {
    try {
      const output = normalizeOutput(value, o.maxPayloadBytes);
      const done = await store.tasks.completeIfLeased({ ...lease, result: output.result, ...(output.children === undefined ? {} : { children: output.children }), now });
      if (!done.ok) throw new LeaseLostError(task.id);
      return { kind: "done", outcome: { status: "completed", result: output.result, error: null, childIds: done.childIds } };
    } catch (error) {
      if (error instanceof LeaseLostError) throw error;
      // A result the store refuses (too big, a plan naming an unknown persona) fails the attempt like any adapter error.
      failure = coerceError(error);
    }
  }
  const error = toErrorObject(failure);
  const failed = await store.tasks.failIfLeased({ ...lease, error, retryable: o.retry && error.retryable, now });
  if (!failed.ok) throw new LeaseLostError(task.id);
  if (failed.outcome === "retrying") {
    // The caller tells the person in one line; the whole error (stack included) is for --log-level debug.
    log.debug({ err: failure, runAt: failed.runAt }, "attempt failed; retrying after the backoff");
    return { kind: "retrying", runAt: failed.runAt, error };
  }
  return { kind: "done", outcome: { status: "failed", result: null, error, childIds: [] } };
}

function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  const ms = Math.max(0, at - systemClock.now());
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
