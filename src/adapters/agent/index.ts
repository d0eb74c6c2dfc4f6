import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { RosterError, coerceError } from "../../errors.js";
import { MAX_PAYLOAD_BYTES_DEFAULT } from "../../store/input.js";
import type { DatabaseIdentity, Json } from "../../store/types.js";
import { KEEP_DEFAULT } from "../../workspace/config.js";
import { ownerOf } from "../../workspace/owner.js";
import { createWorktree, finishWorktree, resolveWorkspace, type Worktree, type WorktreeOutcome } from "../../workspace/worktrees.js";
import type { AdapterEnvironment } from "../registry.js";
import type { Adapter, AdapterContext, AdapterOutput, AdapterPersona, AdapterTask } from "../types.js";
import { buildLaunch, resolveProfile, type AgentAdapterConfig } from "./launch.js";
import { interpretRun, type Answer } from "./output.js";
import { parsePlan } from "./plan.js";
import { buildPrompt } from "./prompt.js";
import { runProcess } from "./process.js";
import { clearReleasedRun, dropWork, restoreWork, resumeSession, reusableHome, saveWork, type RestoredWork, type SavedWork, type SessionResume } from "./resume.js";
import { prepareSettings, type AttemptSettings } from "./settings.js";
import { CodexRollout } from "./codex-rollout.js";
import { LiveSession } from "./live-session.js";
import { asPersonaFault, commandPath, missingCommand } from "./preflight.js";
import { UsageStream } from "./stream-usage.js";
import { usageJson } from "./usage.js";

/**
 * The `agent` adapter: launches a real agent CLI (Claude Code, Codex, Gemini CLI,
 * or a custom one) for one task attempt, the way a person runs it non-interactively.
 *
 * Steps: create the attempt's git worktree when the persona has a `workspace`;
 * build the prompt (persona definition, task, dependency results, workspace, and
 * the plan format for a planner); spawn the CLI with an argv array in the
 * worktree, prompt on stdin or as one argument; read its answer by the profile;
 * then keep or remove the worktree as configured. A planner's answer becomes
 * `{ result, tasks }`, enqueued as children when the task completes.
 */
export interface AgentAdapterOptions {
  /** Environment the CLI inherits before the persona's `env`; default this process's. */
  baseEnv?: NodeJS.ProcessEnv;
  /** Limit on a planned task's payload, in bytes of JSON. */
  maxPayloadBytes?: number;
  /** The database the tasks come from: its git work is named after it (src/workspace/owner.ts). */
  database?: DatabaseIdentity;
}

/** Largest prompt passed as one argument, in bytes (Linux caps one argument at 128 KiB; Windows a whole command line at 32 Ki characters). */
export const PROMPT_ARGUMENT_BYTES_MAX = process.platform === "win32" ? 30_000 : 120_000;

export function createAgentAdapter(options: AgentAdapterOptions = {}): Adapter {
  return { run: (task, ctx) => runAgent(task, ctx, options) };
}

export const agentAdapter: Adapter = createAgentAdapter();

/** The registry's entry point (src/adapters/registry.ts): one adapter per persona, in a worker thread. */
export function createAdapter(_persona: AdapterPersona, env: AdapterEnvironment): Adapter {
  return createAgentAdapter({ maxPayloadBytes: env.maxPayloadBytes, ...(env.database === undefined ? {} : { database: env.database }) });
}

export async function runAgent(task: AdapterTask, ctx: AdapterContext, options: AgentAdapterOptions = {}): Promise<AdapterOutput> {
  const config = ctx.persona.adapter;
  if (config.kind !== "agent") {
    throw new RosterError("CONFIG_INVALID", `persona "${ctx.persona.id}": the agent adapter was given a "${config.kind}" adapter config`, { retryable: false });
  }
  const profile = resolveProfile(config);
  const role = config.role ?? "worker";
  const workspace = config.workspace === undefined ? null : { ...resolveWorkspace(config.workspace, ctx.persona.dir), owner: ownerOf(options.database, task.id) };
  // The last failed attempt's conversation and home, to continue (./resume.ts).
  // A CLI that cannot be found fails before anything is made (./preflight.ts): no worktree, no branch, no home.
  const missing = missingCommand(ctx.persona, options.baseEnv ?? process.env);
  if (missing !== null) throw missing;
  const previousDetails = task.previous?.details ?? {};
  const previousSession = typeof previousDetails.sessionId === "string" ? previousDetails.sessionId : null;
  if (workspace !== null) {
    try {
      if (await clearReleasedRun(workspace, task.id, task.attempt)) ctx.logger.info("an earlier run of this attempt number (released, or before roster retry) left its branch; its work is saved and carried over", { taskId: task.id, attempt: task.attempt });
    } catch (error) {
      ctx.logger.warn("could not clear the branch a released run of this attempt left", { error: coerceError(error).message });
    }
  }
  const worktree = workspace === null ? null : await createWorktree(workspace, task.id, task.attempt).catch((error: unknown) => {
    // A base that is not there, a folder that is no repository: the persona's to fix, not the task's (./preflight.ts).
    throw error instanceof RosterError && error.code === "CONFIG_INVALID" ? asPersonaFault(error, ctx.persona) : error;
  });
  let restored: RestoredWork | null = null;
  if (worktree !== null) {
    try {
      restored = await restoreWork(worktree);
      if (restored !== null) ctx.logger.info("restored an earlier attempt's work in the worktree", { ref: restored.ref, files: restored.files.length });
    } catch (error) {
      ctx.logger.warn("could not restore an earlier attempt's work; starting from the base", { error: coerceError(error).message });
    }
  }
  let answer: Answer | null = null;
  let output: AdapterOutput | null = null;
  let failure: Error | null = null;
  let settings: AttemptSettings | null = null;
  let resumed: SessionResume | null = null;
  const baseEnv = options.baseEnv ?? process.env;
  const live = new LiveSession(profile.output);
  try {
    settings = await prepareSettings({ profile, config, baseEnv, personaId: ctx.persona.id, reuseHome: config.home === "fresh" ? reusableHome(previousDetails.home) : null });
    const cwd = workingFolder(config, ctx.persona.dir, worktree);
    const env = childEnv(baseEnv, settings.env, config, task, ctx, worktree);
    if (previousSession !== null) {
      resumed = await resumeSession({ dialect: profile.dialect, sessionId: previousSession, env, cwd }).catch((error: unknown) => {
        ctx.logger.warn("could not prepare the earlier attempt's session; starting a new one", { sessionId: previousSession, error: coerceError(error).message });
        return null;
      });
    }
    const prompt = buildPrompt({
      definition: ctx.persona.definition,
      task,
      role,
      workspace: worktree === null ? null : { path: worktree.path, branch: worktree.branch, base: worktree.base },
      continuing: task.previous === undefined ? null : { reason: `${task.previous.code}: ${task.previous.message.split("\n")[0]!.slice(0, 300)}`, session: resumed !== null, files: restored?.files ?? [] },
    });
    const launch = buildLaunch(profile, config, prompt, [...settings.args, ...(resumed?.args ?? [])], resumed?.tail ?? []);
    if (launch.stdin === null && Buffer.byteLength(prompt, "utf8") > PROMPT_ARGUMENT_BYTES_MAX) {
      throw new RosterError(
        "VALIDATION",
        `persona "${ctx.persona.id}": the prompt is ${Buffer.byteLength(prompt, "utf8")} bytes, too long for one command-line argument (max ${PROMPT_ARGUMENT_BYTES_MAX}); set promptVia: stdin`,
        { retryable: false },
      );
    }
    ctx.logger.info("starting agent CLI", { command: launch.command, profile: config.profile, cwd, branch: worktree?.branch, ...(resumed === null ? {} : { resumes: resumed.sessionId }) });
    ctx.progress(0, `running ${launch.command}`);
    // Usage read as the CLI prints it reaches the supervisor while it runs, for its budgets (./stream-usage.ts).
    const stream = new UsageStream(profile.dialect);
    const report = ctx.reportUsageTotal;
    // Codex streams its usage to its session file only (./codex-rollout.ts).
    const rollout =
      profile.dialect === "codex" && report !== undefined
        ? new CodexRollout(join(env.CODEX_HOME ?? join(env.HOME ?? homedir(), ".codex"), "sessions"), config.model ?? null, (total) => report(total))
        : null;
    const readers: Array<(line: string) => void> = [];
    if (live.reads) readers.push((line) => live.push(line));
    if (stream.streams && report !== undefined) {
      readers.push((line) => {
        const total = stream.push(line);
        if (total !== null) report(total);
      });
    } else if (rollout !== null) readers.push((line) => rollout.push(line));
    const run = await runProcess({
      command: commandPath(launch.command, ctx.persona.dir),
      args: launch.args,
      cwd,
      env,
      stdin: launch.stdin,
      signal: ctx.signal,
      ...(config.killGraceMs === undefined ? {} : { killGraceMs: config.killGraceMs }),
      ...(readers.length === 0 ? {} : { onStdoutLine: (line: string) => readers.forEach((read) => read(line)) }),
    }).finally(() => rollout?.stop());
    ctx.logger.info("agent CLI exited", { command: launch.command, exitCode: run.exitCode, signal: run.signal });
    answer = interpretRun(profile, run, { keyVar: keyVariable(profile.keyEnv, profile.dialect, config.apiKeyEnv), model: config.model ?? null });
    output =
      role === "planner"
        ? (() => {
            const plan = parsePlan(answer.text, options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES_DEFAULT);
            return { result: { ...baseResult(config, answer), text: plan.summary }, tasks: plan.tasks };
          })()
        : { result: baseResult(config, answer) };
    if (resumed !== null || restored !== null) {
      const result = output.result as { [key: string]: Json };
      result.resumed = { ...(resumed === null ? {} : { sessionId: resumed.sessionId }), ...(restored === null ? {} : { wip: restored.ref, files: restored.files }) };
    }
  } catch (error) {
    failure = withDetails(coerceError(error));
    // Its command gone between the check and the spawn: the persona's fault still.
    if (failure instanceof RosterError && failure.code === "ADAPTER_NOT_FOUND" && failure.details?.failure === undefined) failure = asPersonaFault(failure, ctx.persona);
  }
  const failedDetails = failure instanceof RosterError ? failure.details : undefined;
  // A failure that printed no session (the CLI never started, or was killed) still leaves the one it printed
  // while running (a timeout: ./live-session.ts), or the resumed one, to continue.
  const liveSession = live.sessionId ?? resumed?.sessionId ?? null;
  if (failedDetails !== undefined && failedDetails.sessionId === undefined && liveSession !== null) failedDetails.sessionId = liveSession;
  // A fresh home holding the session of an attempt that will run again stays for that attempt (./resume.ts).
  const keepHome =
    failure !== null && settings?.home != null && failedDetails !== undefined && typeof failedDetails.sessionId === "string" && runsAgain(failure as RosterError, task);
  if (keepHome) failedDetails!.home = settings!.home;
  if (settings !== null && !keepHome) {
    try {
      await settings.cleanup();
    } catch (error) {
      ctx.logger.warn("could not remove the attempt's fresh home", { home: settings.home, error: coerceError(error).message });
    }
  }
  let outcome: WorktreeOutcome | null = null;
  let saved: SavedWork | null = null;
  if (worktree !== null && failure !== null) {
    try {
      saved = await saveWork(worktree, typeof failedDetails?.sessionId === "string" ? failedDetails.sessionId : null);
    } catch (error) {
      ctx.logger.warn("could not save the failed attempt's work for the next one", { path: worktree.path, error: coerceError(error).message });
    }
  }
  if (worktree !== null) {
    try {
      outcome = await finishWorktree(worktree, {
        keep: workspace?.keep ?? KEEP_DEFAULT,
        succeeded: failure === null,
        ...(workspace?.autoCommit ? { autoCommitMessage: `${task.title}\n\nroster task ${task.id}, attempt ${task.attempt}, persona ${ctx.persona.id}` } : {}),
      });
      if (outcome.dirty && !outcome.kept && saved === null) ctx.logger.warn("the agent left uncommitted changes; they went with its worktree", { branch: outcome.branch });
      if (failure === null) await dropWork(worktree.repo.root, task.id, worktree.owner);
    } catch (error) {
      // The attempt's own outcome matters more than its cleanup: report the cleanup problem and go on.
      ctx.logger.error("could not finish the attempt's worktree", { path: worktree.path, error: coerceError(error).message });
    }
  }
  if (failure !== null) {
    if (outcome !== null && failedDetails !== undefined) failedDetails.workspace = { ...workspaceResult(outcome, worktree!), ...(saved === null ? {} : { wip: saved.ref }) };
    throw failure;
  }
  ctx.progress(1);
  const out = output!;
  if (outcome !== null && out.result !== undefined && typeof out.result === "object" && out.result !== null && !Array.isArray(out.result)) {
    out.result.workspace = workspaceResult(outcome, worktree!);
  }
  return out;
}

/**
 * A RosterError the attempt's details can go with: an abort's reason (a timeout, a budget) comes
 * without details, and the next attempt needs its session and saved work (docs/agent-clis.md).
 */
function withDetails(error: Error): Error {
  if (!(error instanceof RosterError) || error.details !== undefined) return error;
  const copy = new RosterError(error.code, error.message, { retryable: error.retryable, details: {} });
  copy.name = error.name;
  return copy;
}

/** Whether the store will run this task again after this failure: retryable with attempts left, or a provider limit (released uncounted). */
function runsAgain(failure: RosterError, task: AdapterTask): boolean {
  const kind = failure.details?.failure;
  if (kind === "rate-limit" || (kind === "usage-limit" && failure.retryable)) return true;
  return failure.retryable && task.attempt < task.maxAttempts;
}

function baseResult(config: AgentAdapterConfig, answer: Answer): { [key: string]: Json } {
  return {
    text: answer.text,
    profile: config.profile,
    ...(answer.sessionId === null ? {} : { sessionId: answer.sessionId }),
    ...answer.meta,
    ...(answer.usage === null ? {} : { usage: usageJson(answer.usage) }),
  };
}

/** The variable an authentication failure names: the CLI's own, and where roster took its value from. */
function keyVariable(cliVar: string | null, dialect: string | null, apiKeyEnv: string | undefined): string | null {
  if (apiKeyEnv === undefined) return cliVar;
  if (dialect === "codex" || cliVar === null) return apiKeyEnv;
  return `${cliVar} (set from ${apiKeyEnv})`;
}

function workspaceResult(outcome: WorktreeOutcome, worktree: Worktree): { [key: string]: Json } {
  return {
    branch: outcome.branch,
    base: worktree.base,
    baseCommit: worktree.baseCommit,
    head: outcome.head,
    commits: outcome.commits,
    dirty: outcome.dirty,
    autoCommitted: outcome.autoCommitted,
    kept: outcome.kept,
    ...(outcome.kept ? { path: outcome.path } : {}),
  };
}

/** In the worktree when there is one (`cwd` then is relative to it); else `cwd` against the persona's folder. */
function workingFolder(config: AgentAdapterConfig, personaDir: string | null, worktree: Worktree | null): string {
  const from = worktree?.path ?? personaDir ?? process.cwd();
  if (config.cwd === undefined) return from;
  return isAbsolute(config.cwd) ? config.cwd : resolve(from, config.cwd);
}

/**
 * The CLI inherits the environment (PATH, HOME, credentials), then the profile's and the
 * attempt's settings (./settings.ts), then the persona's env, then the task's coordinates.
 */
function childEnv(
  base: NodeJS.ProcessEnv,
  settings: Record<string, string>,
  config: AgentAdapterConfig,
  task: AdapterTask,
  ctx: AdapterContext,
  worktree: Worktree | null,
): NodeJS.ProcessEnv {
  return {
    ...base,
    ...settings,
    ...config.env,
    ROSTER_TASK_ID: String(task.id),
    ROSTER_ATTEMPT: String(task.attempt),
    ROSTER_PERSONA: ctx.persona.id,
    ...(worktree === null ? {} : { ROSTER_WORKTREE: worktree.path, ROSTER_BRANCH: worktree.branch }),
  };
}
