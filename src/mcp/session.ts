import { RosterError, coerceError } from "../errors.js";
import type { McpContext } from "./context.js";
import { retryWhileUnreachable } from "../store/retry.js";
import { SESSION_END_RETRY_FIRST_MS, SESSION_END_RETRY_MAX_MS } from "./give-back.js";
import { McpToolError } from "./results.js";
import { HEARTBEAT_TIMEOUT_MS_DEFAULT } from "./schemas.js";

/** How long a session's end waits for its tool calls in progress to finish, in ms. */
export const CALLS_DONE_WAIT_MS = 5_000;
/** How long a task released with skip is kept from the agent that skipped it, in ms (others may take it at once). */
export const SKIP_MS_DEFAULT = 10 * 60_000;
/** Most tasks one agent keeps skipped at once; the oldest skip is forgotten first. */
export const SKIPS_MAX = 100;

/**
 * Tasks each agent said "not for me" to (release_task with skip), until when.
 * Memory of this process: an agent id is bound to one session, so the process
 * that serves its claims is the one that heard the skip.
 */
export class SkipBook {
  private readonly byAgent = new Map<string, Map<number, number>>();

  add(agentId: string, taskId: number, until: number): void {
    let skips = this.byAgent.get(agentId);
    if (skips === undefined) this.byAgent.set(agentId, (skips = new Map()));
    skips.delete(taskId);
    skips.set(taskId, until);
    if (skips.size > SKIPS_MAX) skips.delete(skips.keys().next().value!);
  }

  /** Task ids `agentId` skipped that are still held back at `now`; expired ones are forgotten. */
  active(agentId: string, now: number): Set<number> {
    const skips = this.byAgent.get(agentId);
    const out = new Set<number>();
    if (skips === undefined) return out;
    for (const [taskId, until] of skips) {
      if (until > now) out.add(taskId);
      else skips.delete(taskId);
    }
    if (skips.size === 0) this.byAgent.delete(agentId);
    return out;
  }

  forget(agentId: string): void {
    this.byAgent.delete(agentId);
  }
}

/**
 * One MCP session's agent. The server mints the id (register_agent, or the first
 * tool that needs an agent) and binds it to this session: other sessions cannot
 * act as it, and when the session ends (stdio EOF or signal, HTTP DELETE, idle timeout) the
 * agent is deregistered, which releases its leases without counting the attempts but
 * counts each as a lost lease (src/store/lost-leases.ts: a client that crashes on its task
 * every time makes the task fail, AGENT_LEFT). A server that stops serving its sessions
 * (`roster start` stopping: endsWithServer) releases them uncounted and unbounded, as a
 * supervisor's own stop does (rule 10).
 * Modes: unbound → bound (agentId set) → ended.
 */
export class McpSession {
  private agentId: string | null = null;
  private binding: Promise<string> | null = null;
  private ended = false;
  private ending: Promise<void> | null = null;
  /** Called once when the session ends (before the agent is deregistered). */
  onEnd: (() => void) | null = null;
  /** Called with the id of each request the client cancels (connectMcp), answered or not. */
  onCancel: ((requestId: string | number) => void) | null = null;
  /** Tool calls in progress, and who waits for there to be none. */
  private calls = 0;
  private callsDone: Array<() => void> = [];

  constructor(
    private readonly ctx: McpContext,
    /** The client's name from initialize, for agents it did not name. */
    private readonly clientName: () => string | undefined,
  ) {}

  get agent(): string | null {
    return this.agentId;
  }

  /**
   * Registers (or renames) this session's agent. `resume` takes over an agent id
   * registered before, only if no open session holds it and it is not active
   * (its session ended, or it expired): a live agent's id cannot be taken.
   */
  async register(p: { name?: string | undefined; persona?: string | undefined; heartbeatTimeoutMs?: number | undefined; resume?: string | undefined }): Promise<{ agentId: string; heartbeatTimeoutMs: number }> {
    const { store, clock } = this.ctx;
    let id = this.agentId ?? undefined;
    if (p.resume !== undefined && p.resume !== this.agentId) {
      if (this.agentId !== null) throw new McpToolError("AGENT_MISMATCH", `agentId: this session is already agent "${this.agentId}"; open another session to be another agent`, "agentId");
      const known = await store.agents.get({ agentId: p.resume });
      if (known === null) throw new RosterError("AGENT_NOT_FOUND", `agentId: no agent "${p.resume}" to resume; omit agentId to get a new one`, { details: { field: "agentId" } });
      // Only an MCP agent: a supervisor's id (or a `roster run`'s) is not the session's to take, nor its history to rewrite.
      if (known.kind !== "mcp") {
        throw new RosterError("AGENT_NOT_FOUND", `agentId: "${p.resume}" is a ${known.kind} agent, not an MCP agent to resume; omit agentId to get a new one`, { details: { field: "agentId" } });
      }
      if (this.ctx.boundAgents.has(p.resume) || known.status === "active") {
        throw new McpToolError("AGENT_IN_USE", `agentId: agent "${p.resume}" is active in another session; it can be resumed once that session ends or expires`, "agentId");
      }
      id = p.resume;
    }
    if (this.ended) throw new RosterError("INVALID_STATE", "session: closed", { details: { field: "session" } });
    const agent = await store.agents.register({
      ...(id !== undefined ? { id } : {}),
      name: p.name ?? this.clientName() ?? "mcp agent",
      kind: "mcp",
      personaId: p.persona ?? null,
      heartbeatTimeoutMs: p.heartbeatTimeoutMs ?? HEARTBEAT_TIMEOUT_MS_DEFAULT,
      now: clock.now(),
    });
    this.bind(agent.id);
    return { agentId: agent.id, heartbeatTimeoutMs: agent.heartbeatTimeoutMs };
  }

  /**
   * This session's agent, registered on first use. `given` (a tool's optional
   * agentId) must be this session's own.
   */
  async require(given?: string): Promise<string> {
    if (given !== undefined && given !== this.agentId) {
      if ((await this.ctx.store.agents.get({ agentId: given })) === null) {
        throw new RosterError("AGENT_NOT_FOUND", `agentId: no agent "${given}"; omit agentId (the session has its own) or call register_agent`, { details: { field: "agentId" } });
      }
      throw new McpToolError("AGENT_MISMATCH", `agentId: "${given}" is not this session's agent${this.agentId === null ? " (none yet)" : ` ("${this.agentId}")`}; agent ids are bound to the session that registered them`, "agentId");
    }
    if (this.agentId !== null) return this.agentId;
    this.binding ??= this.register({}).then((r) => r.agentId);
    try {
      return await this.binding;
    } finally {
      this.binding = null;
    }
  }

  /** The agent's id for `createdBy` / `by` of planner writes, when it has one; a planner need not register. */
  by(): string {
    return this.agentId ?? "mcp";
  }

  /**
   * Runs one tool call, counted: the session's end waits for the calls in progress (the
   * transport's close aborts them), so a claim cancelled there gives its lease back before
   * the agent is deregistered, not after.
   */
  async call<T>(run: () => Promise<T>): Promise<T> {
    this.calls++;
    try {
      return await run();
    } finally {
      if (--this.calls === 0) for (const done of this.callsDone.splice(0)) done();
    }
  }

  /** The client cancelled request `requestId`. */
  cancelled(requestId: string | number): void {
    this.onCancel?.(requestId);
  }

  /** Deregisters the agent (its leases go back to the queue uncounted, each a lost lease). Every call gets the same promise; never rejects. */
  end(): Promise<void> {
    this.ending ??= this.deregister(true);
    return this.ending;
  }

  /** end(), the server stopping: the operator's act, not the client's, so no lease is lost (rule 10). The first end decides. */
  endsWithServer(): Promise<void> {
    this.ending ??= this.deregister(false);
    return this.ending;
  }

  /**
   * The session's last writes. The agent is deregistered, which releases every lease it
   * still holds, uncounted (rule 12: its client stopped, not its tasks) but, when the session
   * ended (`sessionEnded`), lost: counted against the task's bound of lost leases. A lease it was
   * handed that the reaper took while this server could not renew it (owed: ./leases.ts)
   * is given back, as is any give-back not written yet (./give-back.ts). While the database
   * is unreachable both are retried with backoff (ctx.sessionEndRetryMs, until the process
   * stops): given up, the leases still held are reaped once their lease runs out.
   */
  private async deregister(sessionEnded: boolean): Promise<void> {
    this.ended = true;
    this.onEnd?.();
    if (this.calls > 0) {
      // Aborted calls end within a store write or two; bounded, so a call that hangs cannot keep the agent.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CALLS_DONE_WAIT_MS);
        this.callsDone.push(() => (clearTimeout(timer), resolve()));
      });
    }
    const id = this.agentId;
    if (id === null) return;
    this.ctx.skips.forget(id);
    const { store, clock, leases, returns, logger, sessionEndRetryMs, stopping } = this.ctx;
    const retry = { withinMs: sessionEndRetryMs, firstMs: SESSION_END_RETRY_FIRST_MS, maxMs: SESSION_END_RETRY_MAX_MS, signal: stopping.signal };
    try {
      const { released, failed } = await retryWhileUnreachable(() => store.agents.deregister({ agentId: id, now: clock.now(), sessionEnded }), retry);
      const gone = new Set([...released, ...failed]);
      const owed = leases.forget(id).filter((l) => l.owed && !gone.has(l.taskId));
      const given = await retryWhileUnreachable(() => returns.giveOrThrow(id, owed), retry);
      logger.debug({ agentId: id, released: released.length, failed: failed.length, given: given.length }, "mcp session ended: agent deregistered");
    } catch (error) {
      leases.forget(id);
      logger.warn({ agentId: id, err: coerceError(error) }, "mcp session ended: deregistering its agent failed; the leases it still holds will be reaped once they run out");
    } finally {
      // Bound until now: no other session may resume the agent while its deregistration is being written.
      this.ctx.boundAgents.delete(id);
    }
  }

  private bind(id: string): void {
    this.agentId = id;
    this.ctx.boundAgents.add(id);
  }
}
