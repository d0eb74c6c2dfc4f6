import { hostname } from "node:os";
import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Service } from "../service.js";
import type { Store } from "../store/index.js";

export interface AgentRegistrationHost {
  readonly store: Store;
  readonly clock: Clock;
  /** Who the supervisor says it is (`roster run` names itself); a `supervisor host:pid` when null. */
  readonly agent: { name: string; kind: string; personaId?: string } | null;
  /** The longest lease of the personas served: the agent's heartbeat timeout. */
  maxLeaseMs(): number;
  /** A registration committed: the database answers (./connection.ts). */
  registered(): void;
  /** Before the deregistration: last writes of the agent (the leases it gives back). */
  leaving?(): Promise<void>;
  error(where: string, error: Error): void;
}

/**
 * The supervisor's row in `agents`: registered at start (and again, under the same
 * id, when the lease keeper finds it expired), deregistered at stop, which releases
 * without counting any lease still held (docs/ARCHITECTURE.md rule 10). Modes:
 * unregistered (id "") → registered → deregistered.
 */
export class AgentRegistration implements Service {
  readonly name = "agent";
  /** The agent id, "" until the first registration. */
  id = "";

  constructor(private readonly host: AgentRegistrationHost) {}

  start(): Promise<void> {
    return this.register();
  }

  async register(): Promise<void> {
    const agent = await this.host.store.agents.register({
      ...(this.id === "" ? {} : { id: this.id }),
      ...(this.host.agent ?? { name: `supervisor ${hostname()}:${process.pid}`, kind: "supervisor" }),
      pid: process.pid,
      hostname: hostname(),
      heartbeatTimeoutMs: this.host.maxLeaseMs(),
      now: this.host.clock.now(),
    });
    this.id = agent.id;
    this.host.registered();
  }

  async stop(): Promise<void> {
    await this.host.leaving?.().catch((error: unknown) => this.host.error("supervisor.giveBack", coerceError(error)));
    try {
      // Releases, without counting, any lease still held (e.g. a settlement that could not commit).
      await this.host.store.agents.deregister({ agentId: this.id, now: this.host.clock.now() });
    } catch (error) {
      this.host.error("supervisor.deregister", coerceError(error));
    }
  }
}
