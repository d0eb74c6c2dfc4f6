import type { Clock } from "../clock.js";
import type { Persona } from "../personas/schema.js";
import type { ClaimedTask, Store } from "../store/index.js";

/** Most tasks one claim statement takes (the store's own cap is 1,000). */
export const CLAIM_BATCH_MAX = 1_000;

/**
 * The producer of one persona: claims `min(persona concurrency - running,
 * global free slots)` ready tasks in one store call (or, for a supervisor that
 * serves one task, that task by id when it is ready).
 *
 * Modes: dirty (ready tasks may exist: it was woken, or its last claim was full)
 * → clean (its last claim came back short, so its queue is drained until the next
 * wake-up). A wake-up that lands while a claim is in flight keeps it dirty
 * (wakeGen), so no enqueue is missed.
 */
export class PersonaProducer {
  running = 0;
  /** Monotonic time its last claim began (the stall guard asks), or -Infinity. */
  lastClaimAttemptAt = Number.NEGATIVE_INFINITY;
  private dirty = true;
  private wakeGen = 0;

  constructor(
    /** Replaced when the persona's file or row changes while the supervisor runs (new claims use the new one). */
    public persona: Persona,
    private readonly host: { readonly store: Store; readonly clock: Clock; readonly agentId: string; readonly monotonic: () => number; readonly taskId: number | null },
  ) {}

  get id(): string {
    return this.persona.id;
  }

  get wanting(): boolean {
    return this.dirty;
  }

  wake(): void {
    this.dirty = true;
    this.wakeGen++;
  }

  /** How many it would claim given `free` global slots. */
  want(free: number): number {
    return Math.min(this.persona.concurrency - this.running, free, CLAIM_BATCH_MAX);
  }

  /** Claims up to `limit` tasks; marks itself clean when the queue came back short. */
  async claim(limit: number): Promise<ClaimedTask[]> {
    if (limit <= 0) return [];
    this.lastClaimAttemptAt = this.host.monotonic();
    const gen = this.wakeGen;
    const { store, agentId, taskId } = this.host;
    const leaseMs = this.persona.leaseMs;
    const now = this.host.clock.now();
    // A supervisor serving one task (roster run) claims it by id: never a bystander of its persona.
    const claimed =
      taskId === null
        ? await store.tasks.claim({ persona: this.persona.id, agentId, limit, leaseMs, now })
        : await store.tasks.claimById({ taskId, agentId, leaseMs, now }).then((task) => (task === null ? [] : [task]));
    if (claimed.length < limit && gen === this.wakeGen) this.dirty = false;
    return claimed;
  }
}
