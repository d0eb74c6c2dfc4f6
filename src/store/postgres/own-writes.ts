import type { Tx } from "./database.js";

/** A look that finds more transaction ids than this since the last one reports a change without checking each. */
export const OWN_WRITES_MAX_RANGE = 200_000;

/**
 * The supervisor's fallback poll (Store.hasExternalChanges, src/supervisor/waker.ts) on
 * PostgreSQL: has a transaction of another process committed since the last look? The
 * store's own writes are not outside changes, as SQLite's `PRAGMA data_version` ignores the
 * connection's own: each one reported used to make the waker re-read every lease held
 * (attempts.checkLeases), four times a second at full load, for nothing.
 *
 * Why transaction ids and not event ids: `max(task_events.id)` cannot tell whose a row is,
 * and ids come from a sequence at insert, not at commit, so another process's row may take
 * an id below one of ours and commit after ours: max(id) then never moves for it. Commits
 * are judged by transaction id (xid8, never wraps) instead:
 *  - Every transaction that commits between two looks either was in progress at the first
 *    look (in its snapshot's in-progress list, kept here as `pending`) or got its id after it
 *    (at or above that snapshot's xmax, kept as `horizon`), and below the second look's
 *    xmax. So each look asks the server the status (pg_xact_status) of every id in
 *    `pending` ∪ [horizon, xmax now): 'committed' is a commit since the last look, 'in
 *    progress' stays pending for the next, 'aborted' (or too old to know) is dropped. No
 *    commit of anyone, whatever its event ids, falls between two looks unasked.
 *  - Own transactions are known by id: each write transaction fetches its id in the same
 *    round trip as its COMMIT, each one-statement write in its statement
 *    (PgTransactions.write, .single), and passes it to end(). Those ids are left out.
 *  - An own transaction's commit reaches the server before its answer reaches us, so a look
 *    may find it committed while its id is not known here yet. A committed id not known as
 *    ours while some own write is outstanding is therefore a suspect, not a change: it is
 *    reported at the first look after every write then outstanding has ended and it still
 *    is not ours (at most one poll interval late; LISTEN/NOTIFY stays the fast path). With
 *    no own write outstanding it is another process's, reported at once.
 * Errs only towards a spare report: a write of another database on the same server (ids are
 * the cluster's), an ANALYZE, a savepoint's subtransaction of ours (it has an id of its own
 * that no function tells us), a one-statement write of ours that returned no rows (withOwnXid),
 * an own commit whose answer was lost. Never towards a miss.
 */
export class OwnWrites {
  private nextToken = 1;
  /** Own writes started and not yet ended (their commit may be on the server already). */
  private readonly outstanding = new Set<number>();
  /** Ids of own committed transactions not yet accounted for by a look. */
  private readonly ours = new Set<number>();
  /** The last look's snapshot xmax: every id from here up was not yet assigned then. */
  private horizon = 0;
  /** Ids in progress at the last look (ours among them until they end). */
  private pending: number[] = [];
  /** Committed ids of unknown owner, each waiting for the own writes outstanding when it was found. */
  private suspects: Array<{ xids: number[]; waitFor: number[] }> = [];
  private looking: Promise<boolean> | null = null;

  /** An own write begins; pass the token to end(). */
  begin(): number {
    const token = this.nextToken++;
    this.outstanding.add(token);
    return token;
  }

  /** An own write ended: its transaction's id when it committed with one, else null. */
  end(token: number, xid: string | number | null | undefined): void {
    if (xid !== null && xid !== undefined) this.ours.add(Number(xid));
    this.outstanding.delete(token);
  }

  /** Where transactions stand now (at open): later looks report what commits from here on. */
  async start(q: Pick<Tx, "one">): Promise<void> {
    const row = await q.one<{ xmax: number; xip: Array<string | number> }>(
      "SELECT pg_snapshot_xmax(snap)::text::bigint AS xmax, ARRAY(SELECT pg_snapshot_xip(snap)::text::bigint) AS xip FROM (SELECT pg_current_snapshot() AS snap) AS s",
    );
    this.horizon = Number(row!.xmax);
    this.pending = row!.xip.map(Number);
  }

  /** True when another process committed a transaction since the last look (see the class). One look at a time. */
  async look(q: Pick<Tx, "one">): Promise<boolean> {
    while (this.looking !== null) await this.looking.catch(() => {});
    this.looking = this.lookOnce(q);
    try {
      return await this.looking;
    } finally {
      this.looking = null;
    }
  }

  private async lookOnce(q: Pick<Tx, "one">): Promise<boolean> {
    const row = await q.one<{ xmax: number; overflow: boolean; committed: Array<string | number>; pending: Array<string | number> }>(LOOK_SQL, [
      this.pending,
      this.horizon,
      [...this.ours],
      OWN_WRITES_MAX_RANGE,
    ]);
    let changed = row!.overflow;
    const suspects: OwnWrites["suspects"] = [];
    for (const s of this.suspects) {
      const xids = s.xids.filter((x) => !this.ours.has(x));
      if (xids.length === 0) continue;
      if (s.waitFor.every((t) => !this.outstanding.has(t))) changed = true;
      else suspects.push({ xids, waitFor: s.waitFor });
    }
    // Checked here, not only in the statement: own writes that ended while the look was on its way are known now.
    const unknown = row!.committed.map(Number).filter((x) => !this.ours.has(x));
    if (unknown.length > 0) {
      if (this.outstanding.size === 0) changed = true;
      else suspects.push({ xids: unknown, waitFor: [...this.outstanding] });
    }
    this.suspects = suspects;
    this.horizon = Number(row!.xmax);
    this.pending = row!.pending.map(Number);
    // Own ids a later look may still meet: not yet assigned at this look's snapshot, still pending, or suspected.
    const keep = new Set([...this.pending, ...suspects.flatMap((s) => s.xids)]);
    for (const x of this.ours) if (x < this.horizon && !keep.has(x)) this.ours.delete(x);
    return changed;
  }
}

/**
 * One look: $1 the ids pending at the last look, $2 its xmax, $3 own ids to leave out, $4 the
 * widest range checked id by id. Returns the snapshot's xmax, the committed and still running
 * ids among those asked, and whether the range was too wide (then the running ones are the
 * snapshot's in-progress list).
 */
const LOOK_SQL = `
WITH b AS MATERIALIZED (SELECT snap, pg_snapshot_xmax(snap)::text::bigint AS xmax FROM (SELECT pg_current_snapshot() AS snap) AS s),
c AS (
  SELECT u.x FROM unnest($1::bigint[]) AS u(x)
  UNION
  SELECT generate_series($2::bigint, b.xmax - 1) FROM b WHERE b.xmax - $2::bigint <= $4::bigint
),
o AS (SELECT DISTINCT u.x FROM unnest($3::bigint[]) AS u(x)),
f AS MATERIALIZED (SELECT c.x, pg_xact_status(c.x::text::xid8) AS status FROM c LEFT JOIN o ON o.x = c.x WHERE o.x IS NULL)
SELECT b.xmax, b.xmax - $2::bigint > $4::bigint AS overflow,
  ARRAY(SELECT f.x FROM f WHERE f.status = 'committed') AS committed,
  ARRAY(SELECT f.x FROM f WHERE f.status = 'in progress'
        UNION SELECT pg_snapshot_xip(b.snap)::text::bigint WHERE b.xmax - $2::bigint > $4::bigint) AS pending
FROM b`;
