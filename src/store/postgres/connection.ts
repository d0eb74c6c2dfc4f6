/**
 * Connecting to PostgreSQL: what a URL is and how it is shown, the connection pools and the
 * settings every session starts with, the time bounds, and the driver's errors as roster's
 * codes (DATABASE_IO, DATABASE_BUSY …). Transactions on those pools: ./database.ts.
 */
import pg from "pg";
import { RosterError, coerceError } from "../../errors.js";

/** True for a `postgres://` or `postgresql://` URL: openStore then picks the PostgreSQL store. */
export function isPostgresUrl(path: string): boolean {
  return /^postgres(ql)?:\/\//i.test(path);
}

/** The URL with its password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "the PostgreSQL URL";
  }
}

/**
 * Type parsers of this store's pools: bigint (epoch ms, ids, counts) as a JS number
 * (exact below 2^53, which epoch ms and ids stay under), numeric as a float.
 */
const TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === 20) return (value: string) => Number(value);
    if (oid === 1700) return (value: string) => Number.parseFloat(value);
    return pg.types.getTypeParser(oid, format as "text");
  }) as typeof pg.types.getTypeParser,
};

/**
 * Bounds on waiting for a server that does not answer (a cut link drops packets
 * rather than refusing them), so a lost connection surfaces as DATABASE_IO instead
 * of a call that hangs (issue 19, deliverable 5; docs/postgres.md, "Losing the
 * database"). In ms: opening a connection (or waiting for a pooled one), and one
 * statement's answer. Migrations, which may wait for another host's migration
 * lock or build indexes, wait up to PG_MIGRATION_TIMEOUT_MS.
 */
export const PG_CONNECT_TIMEOUT_MS = 5_000;
export const PG_QUERY_TIMEOUT_MS = 15_000;
export const PG_MIGRATION_TIMEOUT_MS = 3_600_000;

/**
 * How long the server lets one of roster's sessions sit inside a transaction without
 * sending its next statement before it ends the session. A host cut off mid-transaction
 * leaves its session exactly so, holding the row locks it took, and every other host's
 * write to those tasks queues behind them; each of those writes has a bound of its own
 * (PG_QUERY_TIMEOUT_MS), after which a healthy host reads the wait as a lost
 * connection. So this must be well inside that bound (test/store/postgres-zombie-locks.test.ts).
 * roster never waits on anything but its own next statement inside a transaction: the
 * gaps are the JavaScript between statements (milliseconds; the longest measured in the
 * multi-host run, 10,000 tasks on three supervisor hosts at a 1-minute load average of 6
 * on 2 cores, was 134 ms; a long GC pause is under a second).
 */
export const PG_IDLE_IN_TRANSACTION_MS = 5_000;

/**
 * Session settings of every connection of the store's own pools, so that a host cut off
 * keeps no lock for long and a healthy host's statement ends on the server before its own
 * bound (PG_QUERY_TIMEOUT_MS):
 * - idle_in_transaction_session_timeout (above) ends a transaction left open by a client
 *   that vanished;
 * - tcp_user_timeout, as long: the server gives up sending to a client that has not
 *   acknowledged a byte for that long, since a session blocked sending (a claim's rows, or
 *   the very message that ends it) to a host cut off keeps its locks until it can send;
 * - client_connection_check_interval (PostgreSQL 14 and later): a backend running a
 *   statement checks every 2 s that its client is still there, so a statement whose client
 *   vanished, or gave up at its own bound and dropped the connection, stops with its locks;
 * - lock_timeout 10 s and statement_timeout 12 s, both below PG_QUERY_TIMEOUT_MS: the server
 *   ends a statement first (its locks with it), and the client hears DATABASE_BUSY, not a
 *   lost connection. Migrations lift both for their own session (migratePostgres); `roster db
 *   copy` and the benchmarks' peers do not use these settings at all;
 * - TCP keepalives (idle 5 s, then every 2 s, 3 probes): an idle connection whose client
 *   vanished is noticed within about 11 s.
 */
export const SESSION_SETTINGS: readonly string[] = [
  `idle_in_transaction_session_timeout=${PG_IDLE_IN_TRANSACTION_MS}`,
  `tcp_user_timeout=${PG_IDLE_IN_TRANSACTION_MS}`,
  "client_connection_check_interval=2s",
  "lock_timeout=10s",
  "statement_timeout=12s",
  "tcp_keepalives_idle=5",
  "tcp_keepalives_interval=2",
  "tcp_keepalives_count=3",
];

/**
 * The URL with `-c name=value` settings added to its `options` parameter (the connection's
 * startup options), after any the user gave there (a search_path, say): node-postgres lets the
 * URL's own `options` replace a config field's, so they are merged in the URL.
 */
function withStartupOptions(url: string, settings: readonly string[]): string {
  if (settings.length === 0) return url;
  const parsed = new URL(url);
  const ours = settings.map((x) => `-c ${x}`).join(" ");
  const theirs = parsed.searchParams.get("options");
  parsed.searchParams.set("options", theirs === null || theirs === "" ? ours : `${theirs} ${ours}`);
  return parsed.toString();
}

/**
 * A pool of this store's connections. `bounded` (the store's own pools) adds the
 * waits' bounds and session settings above; a one-off bulk job (`roster db copy`,
 * one long transaction of large statements) goes without.
 */
export function newPool(url: string, max: number, readonly = false, options: { bounded?: boolean } = {}): pg.Pool {
  const bounded = options.bounded === true;
  // Session settings travel in the connection's startup packet (`options`), so they hold from the
  // first statement on; a query sent on "connect" raced the caller's own first query on the client.
  // A read-only store (roster status) cannot write, whatever it is asked: the server refuses (DATABASE_READONLY).
  const settings = [...(bounded ? SESSION_SETTINGS : []), ...(readonly ? ["default_transaction_read_only=on"] : [])];
  const pool = new pg.Pool({
    connectionString: withStartupOptions(url, settings),
    max,
    types: TYPES,
    application_name: "roster",
    ...(bounded ? { connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS, query_timeout: PG_QUERY_TIMEOUT_MS, keepAlive: true, keepAliveInitialDelayMillis: 10_000 } : {}),
  } as pg.PoolConfig);
  // An idle client whose connection breaks (the server restarted) must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  return pool;
}

/** SQLSTATEs after which a whole transaction is simply run again: serialization failure, deadlock. */
export const RETRY_STATES = new Set(["40001", "40P01"]);

/** Maps the driver's errors to roster's, keeping the cause. */
export function translatePgError(error: unknown, where: string, url: string): Error {
  const e = coerceError(error);
  if (e instanceof RosterError) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") {
    if (code === "53100") return new RosterError("DISK_FULL", `${where}: the PostgreSQL server's disk is full (${e.message})`, { cause: e, retryable: false });
    if (code === "25006") return new RosterError("DATABASE_READONLY", `${where}: the PostgreSQL server is read-only (${e.message})`, { cause: e, retryable: false });
    if (code === "3D000" || code === "28P01" || code === "28000" || code === "42501") {
      return new RosterError("DATABASE_INVALID", `${where}: ${redactUrl(url)}: ${e.message}`, { cause: e, retryable: false });
    }
    // client_connection_check_interval (a session setting) is unknown before PostgreSQL 14.
    if (code === "42704" && /client_connection_check_interval/.test(e.message)) {
      return new RosterError("DATABASE_INVALID", `${where}: ${redactUrl(url)}: roster needs PostgreSQL 14 or later (${e.message})`, { cause: e, retryable: false });
    }
    if (RETRY_STATES.has(code) || code === "55P03" || code === "57014") {
      return new RosterError("DATABASE_BUSY", `${where}: ${e.message}`, { cause: e });
    }
    // 25P03, 57P05: the server ended this session, left idle (in a transaction) past its timeout. 57P02: another
    // backend crashed and the server is resetting. 53300: no connection slot left (max_connections or the role's
    // CONNECTION LIMIT), as unreachable as a server that is down: the supervisor waits and tries again.
    if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300" || code === "25P03" || code === "57P05" || ["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EHOSTUNREACH", "EPIPE"].includes(code)) {
      return new RosterError("DATABASE_IO", `${where}: cannot reach PostgreSQL at ${redactUrl(url)} (${e.message})`, { cause: e });
    }
  }
  // The driver gives these no code: its connection broke, a connect or a statement's answer timed out.
  if (/Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error/i.test(e.message)) {
    return new RosterError("DATABASE_IO", `${where}: lost the connection to PostgreSQL at ${redactUrl(url)} (${e.message})`, { cause: e });
  }
  return e;
}
