import { RosterError } from "../../errors.js";
import type { BackendRef, Tx } from "./database.js";
import type { PgTransitions } from "./transitions.js";

/** The reason a lost claim's release gives in its task:released event. */
export const LOST_ANSWER_REASON = "the claim's answer was lost (the connection broke once the claim was sent): released uncounted";

/**
 * A claim whose outcome is unknown: it failed with DATABASE_IO after it may have reached the
 * server. `token` is the lease token prefix it sent (its rows are leased as `token.taskId`),
 * `backend` the server session it was sent on (null when it never got one).
 */
export interface ClaimInDoubt {
  token: string;
  agentId: string;
  backend: BackendRef;
}

/**
 * The sessions among `$1` that may still commit what they were sent: running a statement, or
 * inside a transaction (whose COMMIT may still arrive). Not this one (a reused pid). A session
 * gone, or idle, has committed or rolled back for good.
 */
const BUSY_SESSIONS_SQL = "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND pid <> pg_backend_pid() AND state <> 'idle'";

/**
 * The rows still leased under the lost claims' tokens, locked in task id order (the one order
 * of every transaction that locks several task_status rows, PgTransitions.lockInIdOrder). By
 * the claimants' agent ids first: the leased rows' index (task_status_agent) finds them.
 * Lease tokens are base64url (no '.') then '.' and the task id. Params: $1 agent ids, $2 tokens.
 */
const LEASED_UNDER_SQL = `SELECT task_id, lease_token FROM task_status
  WHERE assigned_agent_id = ANY($1::text[]) AND status IN ('claimed','in_progress') AND split_part(lease_token, '.', 1) = ANY($2::text[])
  ORDER BY task_id FOR UPDATE`;

export interface PgLostClaimsContext {
  /** The store's write (a transaction), which calls afterCommit when it commits. */
  write<T>(name: string, body: (t: Tx) => Promise<T>): Promise<T>;
  transitions: PgTransitions;
  /** The time the releases are written at (the server's clock, rule 16). */
  now(): number;
}

/**
 * Claims whose answer was lost, given back (docs/ARCHITECTURE.md rule 17; docs/postgres.md,
 * "Losing the database"). A claim the server committed while the connection broke before its
 * answer arrived leased tasks its claimant never learned of: left alone they sit until a reaper
 * takes them back, a whole lease later, each counted as a lost lease the task did not cause.
 * So a claim failing with DATABASE_IO is remembered here (in memory: a process that dies leaves
 * them to the reaper, as any dead holder's), and once a later write of the store commits (the
 * connection is healthy again) every row still leased under its token is released, not counted
 * and with no lost lease, through the one release path (PgTransitions.release: fenced by the
 * lease token, its task:released event saying why), all in one transaction; then the token is
 * forgotten. A row another claim took in between (after a reap, a cancel and retry) carries
 * another token and is left alone; a claim that never reached the server finds no rows.
 *
 * A claim whose session may still commit (the server has not yet seen its client go: a statement
 * still running, a transaction still open) stays in doubt until that session is gone or idle, so
 * its release never runs before its outcome is decided; a session that lingers is ended by the
 * server's own bounds (statement_timeout, idle_in_transaction_session_timeout, keepalives: at
 * most seconds, docs/postgres.md). No persona lock is taken: a release, like any settlement,
 * locks only task rows.
 *
 * Modes: empty → in doubt (a claim failed with DATABASE_IO) → releasing (after a commit, in the
 * background: the write that committed is not held back by it) → empty, or in doubt again when
 * the release failed or a session may still commit.
 */
export class PgLostClaims {
  private readonly inDoubt = new Map<string, ClaimInDoubt>();
  private releasing: Promise<void> | null = null;

  constructor(private readonly ctx: PgLostClaimsContext) {}

  /** The claim call `claim` failed with `error`: when the connection broke, its outcome is unknown. */
  failed(claim: ClaimInDoubt, error: unknown): void {
    if (error instanceof RosterError && error.code === "DATABASE_IO") this.inDoubt.set(claim.token, claim);
  }

  /** A write of the store committed: release the lost claims' rows, if any, once at a time. */
  afterCommit(): void {
    if (this.inDoubt.size === 0 || this.releasing !== null) return;
    this.releasing = this.release().finally(() => (this.releasing = null));
  }

  /** Waits for a release under way (the store's close). */
  async settled(): Promise<void> {
    await this.releasing;
  }

  private async release(): Promise<void> {
    const claims = [...this.inDoubt.values()];
    let decided: ClaimInDoubt[];
    try {
      decided = await this.ctx.write("tasks.releaseLostClaims", async (t) => {
        const pids = claims.flatMap((c) => (c.backend.pid === null ? [] : [c.backend.pid]));
        const busy = new Set(pids.length === 0 ? [] : (await t.rows<{ pid: number }>(BUSY_SESSIONS_SQL, [pids])).map((r) => Number(r.pid)));
        const ready = claims.filter((c) => c.backend.pid === null || !busy.has(c.backend.pid));
        if (ready.length === 0) return ready;
        const now = this.ctx.now();
        const rows = await t.rows<{ task_id: number; lease_token: string }>(LEASED_UNDER_SQL, [[...new Set(ready.map((c) => c.agentId))], ready.map((c) => c.token)]);
        for (const row of rows) await this.ctx.transitions.release(t, { taskId: Number(row.task_id), leaseToken: row.lease_token, reason: LOST_ANSWER_REASON, now });
        return ready;
      });
    } catch {
      // Left in doubt, every one: the next write that commits tries again (this one's outcome may be unknown
      // too, and a second release of the same token finds its rows no longer leased under it).
      return;
    }
    for (const claim of decided) this.inDoubt.delete(claim.token);
  }
}
