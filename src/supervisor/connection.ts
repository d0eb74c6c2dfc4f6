import { RosterError } from "../errors.js";
import type { Logger } from "../logging/logger.js";

/** Codes of a store call that failed because the database could not be reached (a lost connection, a refused or timed-out connect). */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(["DATABASE_IO"]);

export function isUnreachable(error: unknown): boolean {
  return error instanceof RosterError && UNREACHABLE_CODES.has(error.code);
}

export interface ConnectionGuardHost {
  readonly logger: Logger;
  readonly monotonic: () => number;
  /** The attempts running now (not yet finished). */
  runningCount(): number;
  /** The database answers again: claim (ready work may have piled up meanwhile). */
  reachable(afterMs: number): void;
  unreachable(reason: string): void;
}

/**
 * Whether this supervisor can reach its database (issue 19, deliverable 5;
 * docs/postgres.md, "Losing the database"). A store call failing with DATABASE_IO
 * (a lost connection, a refused or timed-out connect), or a whole lease without a
 * committed renewal (a link that drops packets), makes it unreachable: no
 * claim is tried (claimPass asks canClaim), the reaper judges nobody, repeated
 * failures of the same kind are logged at debug level only. Running attempts keep
 * going while their leases can still be renewed; the supervisor aborts each once a
 * whole lease has passed since its last renewal was sent (overdue), because from
 * then on another host may have reaped it. The lease keeper keeps probing (its
 * renewals); the first one that commits makes the database reachable again.
 *
 * Modes: reachable → unreachable (first DATABASE_IO) → reachable (a renewal
 * committed) …
 */
export class ConnectionGuard {
  private down = false;
  private downSince = 0;
  private suppressed = 0;
  /** Monotonic time the last renewal committed (or the agent registered). */
  private lastRenewalAt: number;

  constructor(private readonly host: ConnectionGuardHost) {
    this.lastRenewalAt = host.monotonic();
  }

  /** A renewal committed (or the agent registered): the database answers. */
  renewed(): void {
    this.lastRenewalAt = this.host.monotonic();
    this.succeeded();
  }

  /** Every renewal interval: `silentMs` without a committed renewal means the database does not answer. */
  checkSilence(boundMs: number): void {
    const silentMs = this.host.monotonic() - this.lastRenewalAt;
    if (silentMs >= boundMs) this.silent(silentMs);
  }

  get canClaim(): boolean {
    return !this.down;
  }

  get reachable(): boolean {
    return !this.down;
  }

  /** A store call failed: true when it was the database being unreachable (logged here once; the caller logs it at debug level). */
  failed(where: string, error: unknown): boolean {
    if (!isUnreachable(error)) return false;
    if (this.down) this.suppressed++;
    else this.goDown({ where, err: error }, (error as Error).message);
    return true;
  }

  /**
   * No renewal has committed for `silentMs` (a whole lease): calls are not failing
   * but not answered either (a link that drops packets fails them only at their
   * timeouts, PG_CONNECT_TIMEOUT_MS and PG_QUERY_TIMEOUT_MS).
   */
  silent(silentMs: number): void {
    if (this.down) return;
    this.goDown({ silentMs: Math.round(silentMs) }, `no lease renewal committed for ${Math.round(silentMs)} ms`);
  }

  private goDown(details: Record<string, unknown>, reason: string): void {
    this.down = true;
    this.downSince = this.host.monotonic();
    this.suppressed = 0;
    this.host.logger.error(
      { ...details, reason, running: this.host.runningCount() },
      "database unreachable: no new claims; running attempts go on while their leases can be renewed, each is aborted once a whole lease passed since its last renewal (reconnecting)",
    );
    this.host.unreachable(reason);
  }

  /** A renewal (or another write) committed. */
  succeeded(): void {
    if (!this.down) return;
    this.down = false;
    const afterMs = Math.round(this.host.monotonic() - this.downSince);
    this.host.logger.warn({ afterMs, failedCalls: this.suppressed }, "database reachable again: claiming again");
    this.host.reachable(afterMs);
  }
}
