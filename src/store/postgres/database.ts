import pg from "pg";
import { RosterError, coerceError } from "../../errors.js";
import type { StoreEventBus, StoreEventMap, StoreEventName } from "../events.js";
import { OwnWrites } from "./own-writes.js";
import { RETRY_STATES, translatePgError } from "./connection.js";

/** One query surface inside a transaction. */
export interface Tx {
  /** Rows of a parameterised statement. */
  rows<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** The first row, or undefined. */
  one<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R | undefined>;
  /** Rows changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
  /** Queues an event for after the commit. */
  emit<K extends StoreEventName>(name: K, payload: StoreEventMap[K]): void;
  /** Runs `body` in a savepoint; on a throw its writes and queued events are rolled back and the error rethrown. */
  savepoint<T>(body: () => Promise<T>): Promise<T>;
}

/**
 * The server session (backend process id) a write was last sent on, filled in by
 * PgTransactions.write and single when they take a connection: a claim whose answer was lost
 * keeps it, so its release waits until that session can no longer commit (src/store/postgres/lost-claims.ts).
 */
export interface BackendRef {
  pid: number | null;
}

/** The backend process id of a pooled connection (null before it is connected). */
function backendPid(client: pg.PoolClient): number | null {
  const pid = (client as unknown as { processID?: number | null }).processID;
  return typeof pid === "number" ? pid : null;
}

type PendingEmit = { [K in StoreEventName]: [K, StoreEventMap[K]] }[StoreEventName];

/**
 * The events after which another host may have work to do (a task became ready or
 * due later, a lease ended): a transaction that queued one NOTIFYs the store's
 * channel, delivered to every listener when it commits (LISTEN/NOTIFY wake-ups).
 */
const WAKE_EVENTS: ReadonlySet<StoreEventName> = new Set<StoreEventName>([
  "task:enqueued",
  "task:ready",
  "claim:reopened",
  "task:retrying",
  "task:released",
  "task:cancelled",
  "task:retried",
  "lease:expired",
]);

/** The NOTIFY channel of the roster in `schema` (one database may hold several, one per schema). */
export function notifyChannel(schema: string): string {
  return `roster:${schema}`.slice(0, 63);
}

/** Transaction attempts for a serialization failure or deadlock before giving up with DATABASE_BUSY. */
export const PG_RETRIES = 8;

/**
 * Runs transactions on the pool: BEGIN … COMMIT on one client, the whole body run
 * again after a serialization failure or deadlock (a few ms of backoff), events
 * emitted only after the commit. Reads run on any pooled connection.
 */
export class PgTransactions {
  private closed = false;
  /** Set once the schema is known (after migrations): transactions that wake others NOTIFY it. */
  channel: string | null = null;
  /** This store's own committed transactions, told from other processes' (Store.hasExternalChanges). */
  readonly own = new OwnWrites();

  constructor(
    readonly pool: pg.Pool,
    private readonly bus: StoreEventBus,
    private readonly url: string,
    private readonly hooks: { onTransaction?: ((name: string, durationMs: number) => void) | undefined; onBusyRetry?: ((attempt: number) => void) | undefined } = {},
  ) {}

  /**
   * The wake-ups of a transaction, before its COMMIT: one NOTIFY when it queued a WAKE_EVENT;
   * else, when it settled leases (a completion, a failure), one call that NOTIFYs only if a
   * claimant found the settled personas' room used up (roster_room_freed, migrations/postgres/0009).
   */
  private async notify(client: pg.PoolClient, pending: readonly PendingEmit[], channel: string): Promise<void> {
    if (pending.some(([event]) => WAKE_EVENTS.has(event))) return void (await client.query("SELECT pg_notify($1, '')", [channel]));
    let personas: Set<string> | null = null;
    for (const [event, payload] of pending) {
      if (event === "task:completed" || event === "task:failed") (personas ??= new Set()).add((payload as StoreEventMap["task:completed"]).persona);
    }
    if (personas !== null) await client.query("SELECT roster_room_freed($1::text[], $2)", [[...personas], channel]);
  }

  markClosed(): void {
    this.closed = true;
  }

  private assertOpen(name: string): void {
    if (this.closed) throw new RosterError("INVALID_STATE", `${name}: the store is closed`, { retryable: false });
  }

  async write<T>(name: string, body: (tx: Tx) => Promise<T>, backend?: BackendRef): Promise<T> {
    this.assertOpen(name);
    const token = this.own.begin();
    let xid: string | null = null;
    try {
      return await this.writeAttempts(name, body, (committed) => (xid = committed), backend);
    } finally {
      this.own.end(token, xid);
    }
  }

  private async writeAttempts<T>(name: string, body: (tx: Tx) => Promise<T>, committed: (xid: string | null) => void, backend?: BackendRef): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const pending: PendingEmit[] = [];
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (error) {
        throw translatePgError(error, name, this.url);
      }
      // A checked-out connection that breaks between statements emits 'error' with nobody listening
      // (the pool listens only to idle ones), which would end the process; the statement fails instead.
      if (!guarded.has(client)) {
        guarded.add(client);
        client.on("error", () => {});
      }
      if (backend !== undefined) backend.pid = backendPid(client);
      const started = performance.now();
      let broken = false;
      try {
        await client.query("BEGIN");
        const value = await body(makeTx(client, pending));
        if (this.channel !== null) await this.notify(client, pending, this.channel);
        // The transaction's id in the COMMIT's round trip (two statements in one simple query), so
        // hasExternalChanges knows this commit for its own (OwnWrites); null when it wrote nothing.
        const results = (await client.query(COMMIT_SQL)) as unknown as pg.QueryResult<{ xid: string | null }>[];
        committed(results[0]?.rows[0]?.xid ?? null);
        this.hooks.onTransaction?.(name, performance.now() - started);
        client.release();
        for (const [event, payload] of pending) this.bus.emit(event, payload as never);
        return value;
      } catch (error) {
        // A connection that broke or stopped answering is dropped, not asked to roll back (the server
        // rolls back when the session ends); waiting for its ROLLBACK would double the wait.
        const translated = translatePgError(error, name, this.url);
        if (translated instanceof RosterError && translated.code === "DATABASE_IO") broken = true;
        else {
          try {
            await client.query("ROLLBACK");
          } catch {
            broken = true;
          }
        }
        client.release(broken ? true : undefined);
        const code = (error as { code?: unknown }).code;
        if (typeof code === "string" && (RETRY_STATES.has(code) || isIdempotencyRace(error)) && attempt < PG_RETRIES) {
          this.hooks.onBusyRetry?.(attempt);
          this.bus.emit("db:busy-retry", { attempt });
          await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random())));
          continue;
        }
        throw translatePgError(error, name, this.url);
      }
    }
  }

  /**
   * One statement as a whole transaction (no BEGIN … COMMIT: PostgreSQL runs a statement
   * sent alone atomically), for the hot path's functions (migrations/postgres/0010): one
   * round trip where a transaction takes four or five. `then` turns its rows into the
   * value and queues the notifications, emitted once it committed. Retried as write() is
   * after a serialization failure or deadlock. The statement NOTIFYs itself when it must.
   */
  async single<R, T>(name: string, sql: string, params: unknown[], then: (rows: R[], emit: Tx["emit"]) => T, backend?: BackendRef): Promise<T> {
    this.assertOpen(name);
    const token = this.own.begin();
    let xid: string | null = null;
    try {
      return await this.singleAttempts(name, withOwnXid(sql), params, then, (committed) => (xid = committed), backend);
    } finally {
      this.own.end(token, xid);
    }
  }

  private async singleAttempts<R, T>(
    name: string,
    sql: string,
    params: unknown[],
    then: (rows: R[], emit: Tx["emit"]) => T,
    committed: (xid: string | null) => void,
    backend?: BackendRef,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      let rows: R[];
      try {
        rows = (await this.query(queryConfig(sql, params), backend)).rows as R[];
        committed((rows[0] as { roster_xid?: string | null } | undefined)?.roster_xid ?? null);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (typeof code === "string" && RETRY_STATES.has(code) && attempt < PG_RETRIES) {
          this.hooks.onBusyRetry?.(attempt);
          this.bus.emit("db:busy-retry", { attempt });
          await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random())));
          continue;
        }
        throw translatePgError(error, name, this.url);
      }
      this.hooks.onTransaction?.(name, performance.now() - started);
      const pending: PendingEmit[] = [];
      const value = then(rows, (event, payload) => void pending.push([event, payload] as PendingEmit));
      for (const [event, payload] of pending) this.bus.emit(event, payload as never);
      return value;
    }
  }

  /**
   * One query on a pooled connection, as pool.query does it (a connection whose query failed is
   * dropped), telling `backend` which server session it was sent on.
   */
  private async query(config: pg.QueryConfig, backend?: BackendRef): Promise<pg.QueryResult> {
    if (backend === undefined) return this.pool.query(config);
    const client = await this.pool.connect();
    if (!guarded.has(client)) {
      guarded.add(client);
      client.on("error", () => {});
    }
    backend.pid = backendPid(client);
    try {
      const result = await client.query(config);
      client.release();
      return result;
    } catch (error) {
      client.release(true);
      throw error;
    }
  }

  async read<T>(name: string, body: (q: Pick<Tx, "rows" | "one">) => Promise<T>): Promise<T> {
    this.assertOpen(name);
    try {
      return await body({
        rows: async <R>(sql: string, params?: unknown[]) => (await this.pool.query(sql, params)).rows as R[],
        one: async <R>(sql: string, params?: unknown[]) => (await this.pool.query(sql, params)).rows[0] as R | undefined,
      });
    } catch (error) {
      throw translatePgError(error, name, this.url);
    }
  }
}

/** A write transaction's end: its id (null when it wrote nothing), then COMMIT, in one round trip. */
const COMMIT_SQL = "SELECT pg_current_xact_id_if_assigned()::text AS xid; COMMIT";

/** single()'s statements wrapped to bring their transaction's id, by the statement's text. */
const WITH_XID = new Map<string, string>();

/**
 * A one-statement write that also returns its transaction's id (OwnWrites) on each row,
 * read as the rows come out of the function's scan, so after the function ran (a PL/pgSQL
 * set-returning function's rows are all made before the first is read). A statement that
 * returned no rows but wrote (a claim that found the persona's room used up and said so in
 * persona_room_waits) brings no id: its commit then counts as another process's, one spare
 * look. Bringing the id in that case too (a left join of the statement to one row) made a
 * claim and a settle 6-60 % slower, one at a time (paired, 6 of 6 rounds); the id on each
 * row was within the noise (4 rounds). Prepared when the statement was.
 */
function withOwnXid(sql: string): string {
  let wrapped = WITH_XID.get(sql);
  if (wrapped === undefined) {
    wrapped = `SELECT q.*, pg_current_xact_id_if_assigned()::text AS roster_xid FROM (${sql}) AS q`;
    if (PREPARED.has(sql)) prepared(wrapped);
    WITH_XID.set(sql, wrapped);
  }
  return wrapped;
}

/** Pooled connections given an 'error' listener of their own (once each). */
const guarded = new WeakSet<pg.PoolClient>();

/** Two enqueues of one idempotency key at once: the loser runs again and finds the winner's task. */
function isIdempotencyRace(error: unknown): boolean {
  const e = error as { code?: unknown; constraint?: unknown };
  return e.code === "23505" && e.constraint === "tasks_idempotency_key_key";
}

/** Names of the statements prepared once per connection, by their text (see prepared()). */
const PREPARED = new Map<string, string>();

/**
 * Marks a statement of the supervisor's hot path (claim, start, settle) to be prepared
 * once per connection and then only bound and executed: PostgreSQL plans an unnamed
 * statement on every run, and for the claim that planning took a third of the
 * statement's time (EXPLAIN ANALYZE in the `postgres` bench). Returns the text as given.
 */
export function prepared(sql: string): string {
  if (!PREPARED.has(sql)) PREPARED.set(sql, `roster_hot_${PREPARED.size + 1}`);
  return sql;
}

/** A statement's query: by its name when it is one of prepared()'s, so each connection prepares it once. */
function queryConfig(sql: string, params?: unknown[]): pg.QueryConfig {
  const name = PREPARED.get(sql);
  return name === undefined ? { text: sql, values: params ?? [] } : { name, text: sql, values: params ?? [] };
}

function query(client: pg.PoolClient, sql: string, params?: unknown[]): Promise<pg.QueryResult> {
  return client.query(queryConfig(sql, params));
}

function makeTx(client: pg.PoolClient, pending: PendingEmit[]): Tx {
  let savepoints = 0;
  const tx: Tx = {
    rows: async <R>(sql: string, params?: unknown[]) => (await query(client, sql, params)).rows as R[],
    one: async <R>(sql: string, params?: unknown[]) => (await query(client, sql, params)).rows[0] as R | undefined,
    run: async (sql, params) => (await query(client, sql, params)).rowCount ?? 0,
    emit: (name, payload) => {
      pending.push([name, payload] as PendingEmit);
    },
    savepoint: async (body) => {
      const name = `sp_${++savepoints}`;
      const mark = pending.length;
      await client.query(`SAVEPOINT ${name}`);
      try {
        const value = await body();
        await client.query(`RELEASE SAVEPOINT ${name}`);
        return value;
      } catch (error) {
        await client.query(`ROLLBACK TO SAVEPOINT ${name}`);
        pending.length = mark;
        throw error;
      }
    },
  };
  return tx;
}
