import type { Clock } from "../clock.js";
import type { Logger } from "../logging/logger.js";
import type { LeaseRef, Store } from "../store/index.js";

/**
 * Leases the reaper took while their attempts ran here (docs/ARCHITECTURE.md rule 6,
 * src/store/lost-leases.ts): alive to hear of it, this holder lost them to its own
 * silence (a cut link, a freeze), not to its tasks, so it gives them back.
 */
export class LeasesLostHere {
  private leases: LeaseRef[] = [];

  /** `host.agentId` is read at each give-back: it follows re-registration. */
  constructor(private readonly host: { readonly store: Store; readonly clock: Clock; readonly logger: Logger; readonly agentId: string }) {}

  add(lease: LeaseRef): void {
    this.leases.push(lease);
  }

  /**
   * The store takes each off its task's lost leases if it is still the task's last reaped
   * one. Kept for the next try if the write fails.
   */
  async giveBack(): Promise<void> {
    const leases = this.leases.splice(0);
    if (leases.length === 0) return;
    try {
      const { given } = await this.host.store.tasks.giveBack({ leases, agentId: this.host.agentId, now: this.host.clock.now() });
      if (given.length > 0) this.host.logger.info({ given: given.map((l) => l.taskId) }, "reaped leases given back: their attempts were running here, the loss was this host's, not the tasks'");
    } catch (error) {
      this.leases.unshift(...leases);
      throw error;
    }
  }
}
