import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { loadAdapter, type AdapterEnvironment } from "../../adapters/registry.js";
import { missingCommand, missingWorkspace } from "../../adapters/agent/preflight.js";
import { systemClock } from "../../clock.js";
import type { Config } from "../../config.js";
import { ERROR_CODES, RosterError, coerceError, toErrorObject, type ErrorCode, type ErrorObject } from "../../errors.js";
import { createLogger, type Logger } from "../../logging/logger.js";
import { fromPersonaRecord, loadPersonaDir, toAdapterPersona, toPersonaUpsert } from "../../personas/load.js";
import type { Persona } from "../../personas/schema.js";
import type { Json, Store } from "../../store/index.js";
import { PRIORITY_MAX, TITLE_MAX } from "../../store/input.js";
import { unknownNameHint } from "../../store/suggest.js";
import { Supervisor } from "../../supervisor/supervisor.js";
import { pruneWorkspacesAtStart } from "../../workspace/startup.js";
import { printError, printJson } from "../output.js";
import { addDbOption, addJsonOption, addPersonasOption, configFrom, configValueLabel, withStore, type DbOptions, type JsonOptions, type PersonasOptions } from "../options.js";

/**
 * `roster run --persona P "prompt"`: direct launching. One task, run now by this
 * process and recorded like any other: enqueued, then driven by a Supervisor
 * that serves this task alone (SupervisorOptions.taskId: claimed by id, never a
 * bystander of its persona) under a one-off `cli` agent. Its attempts go through
 * the same worker pool, timeouts, aborts, lease renewals, usage, provider limits,
 * human input, retries and settlement as `roster start`'s (a planner's child
 * tasks are enqueued as usual, for a supervisor to run). A retryable failure is
 * retried after its backoff until the attempts are used up, unless --no-retry.
 * Ctrl-C (SIGINT or SIGTERM) cancels the task, recorded as the user's
 * interruption (the `task:cancelled` event's reason), so a later `roster start`
 * does not run what the user aborted; the attempt is aborted and its process
 * tree ended; exit 130. A second signal exits at once.
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
    const files = loadPersonaDir(config.personasDir, configValueLabel(config, "personasDir"));
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
    const files = existsSync(config.personasDir) ? loadPersonaDir(config.personasDir, configValueLabel(config, "personasDir")) : [];
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
  const now = systemClock.now();
  const persona = await findPersona(store, config, params.personaId, now);
  await pruneWorkspacesAtStart({ store, personas: [persona], now, logger: params.logger });
  // An adapter that cannot load is bad input: refused before anything is written (the worker thread loads it again).
  const env: AdapterEnvironment = { personasDir: config.personasDir, allowAbsoluteModules: config.allowAbsoluteModules, maxPayloadBytes: config.maxPayloadBytes };
  await loadAdapter(toAdapterPersona(persona), env);
  // A persona that cannot run (its CLI not found, its workspace's base missing) is refused before the task is written (src/adapters/agent/preflight.ts).
  const fault = missingCommand(toAdapterPersona(persona)) ?? (await missingWorkspace(toAdapterPersona(persona)));
  if (fault !== null) throw fault;
  const { ids } = await store.tasks.enqueue({
    tasks: [{ persona: persona.id, title: params.title, description: params.description, priority: PRIORITY_MAX }],
    createdBy: "cli:run",
    now,
  });
  const taskId = ids[0]!;
  const supervisor = new Supervisor({
    store,
    database: await store.maintenance.identity(),
    // Asked to run it here and now: also a persona otherwise left to external (MCP) agents.
    personas: [{ ...persona, external: false }],
    config: { ...config, concurrency: 1, threads: 1 },
    logger: params.logger,
    taskId,
    agent: { name: `roster run (pid ${process.pid})`, kind: "cli", personaId: persona.id },
    retryFailures: params.retry,
    // Every attempt's start is written (task:started) as soon as it is dispatched, not 20 ms later: one task,
    // one person watching it. One that settles before that write begins (a no-op on a thread already up)
    // still goes claimed -> completed, as docs/ARCHITECTURE.md's start fold says.
    startFoldMs: 0,
  });
  const offReports = reportAttempts(supervisor, store, taskId);
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    void cancelInterrupted(store, taskId, supervisor.agentId)
      .catch((error: unknown) => params.logger.error({ err: coerceError(error) }, "could not cancel the interrupted task"))
      .finally(() => void supervisor.stop("interrupted"));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await supervisor.start();
    await supervisor.done;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    offReports();
  }
  const task = await store.tasks.get({ taskId, eventLimit: 0 });
  if (interrupted) {
    const error = toErrorObject(new RosterError("ABORTED", INTERRUPTED_REASON));
    return { taskId, status: "cancelled", attempts: task.attempts, result: null, error, childIds: [] };
  }
  const children = task.children.map((c) => c.id);
  if (task.status === "completed") return { taskId, status: "completed", attempts: task.attempts, result: task.result, error: null, childIds: children };
  // Failed, or cancelled by someone else (`roster cancel`).
  const error = task.error ?? toErrorObject(new RosterError("ABORTED", `task ${taskId} was ${task.status}`, { retryable: false }));
  return { taskId, status: "failed", attempts: task.attempts, result: null, error, childIds: [] };
}

/**
 * One line on stderr per attempt that will be tried again (`roster: attempt N of task T
 * failed (CODE: message); retrying in 1.2 s`) and when the task waits for a person; the
 * whole error is for --log-level debug. Returns the unsubscribe.
 */
function reportAttempts(supervisor: Supervisor, store: Store, taskId: number): () => void {
  let runAt: number | null = null;
  const offRetrying = store.events.on("task:retrying", (e) => {
    if (e.taskId === taskId) runAt = e.runAt;
  });
  const offFinished = supervisor.events.on("task:run-finished", (e) => {
    if (e.taskId !== taskId) return;
    if (e.outcome === "retrying") {
      const wait = runAt === null ? "" : `; retrying in ${formatMs(runAt - systemClock.now())}`;
      process.stderr.write(`roster: attempt ${e.attempt} of task ${taskId} failed (${e.errorCode ?? "ADAPTER_FAILED"}: ${e.errorMessage ?? "failed"})${wait}\n`);
      runAt = null;
    } else if (e.outcome === "released") {
      void store.tasks.get({ taskId, eventLimit: 0 }).then((task) => {
        if (task.status === "awaiting_input" || task.status === "awaiting_approval") {
          process.stderr.write(`roster: task ${taskId} is waiting for a person (roster show ${taskId}; roster answer or approve ${taskId}); Ctrl-C cancels it\n`);
        } else if (task.status === "pending" && e.errorCode !== undefined) {
          // Given back uncounted by its own failure: a provider's rate or usage limit (docs/economics.md).
          process.stderr.write(`roster: attempt ${e.attempt} of task ${taskId} was given back, not counted (${e.errorCode}: ${e.errorMessage ?? "released"}); retrying in ${formatMs(task.runAt - systemClock.now())}\n`);
        }
      });
    }
  });
  return () => {
    offRetrying();
    offFinished();
  };
}

/** The user interrupted the run: the task is cancelled (whatever state it is in), with the reason in its event. */
async function cancelInterrupted(store: Store, taskId: number, agentId: string): Promise<void> {
  const task = await store.tasks.get({ taskId, eventLimit: 0 });
  if (task.status !== "completed" && task.status !== "failed" && task.status !== "cancelled") {
    await store.tasks.cancel({ taskId, reason: INTERRUPTED_REASON, ...(agentId === "" ? {} : { by: agentId }), now: systemClock.now() });
  }
}

function formatMs(ms: number): string {
  const value = Math.max(0, ms);
  return value < 1_000 ? `${Math.round(value)} ms` : `${(value / 1_000).toFixed(1)} s`;
}
