import type { Clock } from "../clock.js";
import type { Persona } from "../personas/schema.js";
import type { ClaimParams, ClaimedTask, Store } from "../store/index.js";

/** Most tasks one claim statement takes (the store's own cap is 1,000). */
export const CLAIM_BATCH_MAX = 1_000;

export interface ProducerHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly agentId: string;
  readonly monotonic: () => number;
  /** The one task a supervisor serves (roster run), or null. */
  readonly taskId: number | null;
}

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
  /** A claim of its is in flight in a settle's transaction (ClaimLoop.joinSettle): passes skip it until it ends. */
  claiming = false;
  /** Monotonic time its last claim began (the stall guard asks), or -Infinity. */
  lastClaimAttemptAt = Number.NEGATIVE_INFINITY;
  private dirty = true;
  private wakeGen = 0;

  constructor(
    /** Replaced when the persona's file or row changes while the supervisor runs (new claims use the new one). */
    public persona: Persona,
    private readonly host: ProducerHost,
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

  /** How many it would claim given `free` global slots, once `settling` of its attempts are settled. */
  want(free: number, settling = 0): number {
    return Math.min(this.persona.concurrency - this.running + settling, free, CLAIM_BATCH_MAX);
  }

  /** Claims up to `limit` tasks; marks itself clean when the queue came back short. */
  async claim(limit: number): Promise<ClaimedTask[]> {
    if (limit <= 0) return [];
    const request = this.request(limit);
    try {
      return request.took(await this.host.store.tasks.claim(request.params));
    } catch (error) {
      this.claiming = false;
      throw error;
    }
  }

  /**
   * A claim of up to `limit` tasks to make now (by claim, or in a settle's transaction:
   * store.tasks.settleAndClaim); `took` gets what it claimed, and marks the producer clean
   * when the queue came back short and no wake-up came meanwhile.
   */
  request(limit: number): { params: ClaimParams; took(claimed: ClaimedTask[]): ClaimedTask[] } {
    this.lastClaimAttemptAt = this.host.monotonic();
    this.claiming = true;
    const gen = this.wakeGen;
    const { agentId, taskId } = this.host;
    const leaseMs = this.persona.leaseMs;
    const now = this.host.clock.now();
    // A supervisor serving one task (roster run) claims it by id: never a bystander of its persona.
    const params: ClaimParams = taskId === null ? { persona: this.persona.id, agentId, limit, leaseMs, now } : { taskId, agentId, leaseMs, now };
    return {
      params,
      took: (claimed) => {
        this.claiming = false;
        if (claimed.length < limit && gen === this.wakeGen) this.dirty = false;
        return claimed;
      },
    };
  }
}

/**
 * The producers a supervisor serves, one per persona that is not `external` (a
 * persona served only by external agents gets none: docs/ARCHITECTURE.md,
 * personas), replaced as a set when the personas change while running.
 */
export class Producers {
  private list: PersonaProducer[] = [];
  private readonly byId = new Map<string, PersonaProducer>();

  constructor(
    personas: readonly Persona[],
    private readonly host: ProducerHost,
  ) {
    this.set(personas.filter((persona) => !persona.external).map((persona) => new PersonaProducer(persona, host)));
  }

  get all(): readonly PersonaProducer[] {
    return this.list;
  }

  get(persona: string): PersonaProducer | undefined {
    return this.byId.get(persona);
  }

  /** Marks these personas' producers (all with null) as having ready tasks. */
  wake(personas: readonly string[] | null): void {
    if (personas === null) for (const producer of this.list) producer.wake();
    else for (const id of personas) this.byId.get(id)?.wake();
  }

  /**
   * Serves these personas from now on: new ones get a producer (its running count from
   * `runningOf`), changed ones keep theirs with the new settings (attempts already running
   * keep the old ones), the others are dropped (their running attempts finish).
   */
  replace(personas: readonly Persona[], runningOf: (persona: string) => number): { added: string[]; changed: string[]; removed: string[] } {
    const next: PersonaProducer[] = [];
    const added: string[] = [];
    const changed: string[] = [];
    for (const persona of personas.filter((p) => !p.external)) {
      const producer = this.byId.get(persona.id);
      if (producer === undefined) {
        const fresh = new PersonaProducer(persona, this.host);
        fresh.running = runningOf(persona.id);
        next.push(fresh);
        added.push(persona.id);
        continue;
      }
      if (JSON.stringify(producer.persona) !== JSON.stringify(persona)) changed.push(persona.id);
      producer.persona = persona;
      next.push(producer);
    }
    const removed = this.list.map((p) => p.id).filter((id) => !next.some((p) => p.id === id));
    this.set(next);
    return { added, changed, removed };
  }

  private set(producers: PersonaProducer[]): void {
    this.list = producers;
    this.byId.clear();
    for (const producer of producers) this.byId.set(producer.id, producer);
  }
}
