/**
 * The SQLite connection's write path: write transactions (BEGIN IMMEDIATE, retried on
 * SQLITE_BUSY, events emitted after the commit) and the driver's errors as roster's.
 * Opening a file is src/store/sqlite/open.ts.
 */
import type Database from "better-sqlite3";
import { statfsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import pRetry, { AbortError } from "p-retry";
import { RosterError, coerceError } from "../../errors.js";
import type { StoreEventBus, StoreEventMap, StoreEventName } from "../events.js";
import type { LivenessJudge } from "../liveness.js";

export type Db = Database.Database;

export const BUSY_TIMEOUT_MS_DEFAULT = 5_000;
/** Extra attempts, with backoff, for a transaction that still met SQLITE_BUSY after busy_timeout. */
export const BUSY_RETRIES_DEFAULT = 5;

/** The wait before the first retry after SQLITE_BUSY, in ms; it doubles per retry. */
export const BUSY_RETRY_MIN_MS = 20;
/** The longest wait between retries after SQLITE_BUSY, in ms. */
export const BUSY_RETRY_MAX_MS = 500;
/** Below this much free space (bytes) an I/O error is taken for a full disk: SQLite's -shm alone needs 32 KiB. */
const DISK_FULL_FREE_BYTES = 64 * 1024;

/** The wait before busy retry `attempt` (1-based): min·2^(attempt-1), capped, times a random factor in [1, 2) (p-retry's schedule). */
export function busyRetryDelayMs(attempt: number, random: () => number = Math.random): number {
  return Math.round(Math.min(BUSY_RETRY_MAX_MS, BUSY_RETRY_MIN_MS * 2 ** (attempt - 1)) * (1 + random()));
}

/** Free bytes on the filesystem that holds `path` (or would hold it), or null when that cannot be read. */
function freeBytes(path: string): number | null {
  try {
    const stats = statfsSync(dirname(resolve(path)));
    return stats.bavail * stats.bsize;
  } catch {
    return null; // Only used to name a failure better; the failure itself is reported either way.
  }
}

/**
 * Maps the driver's error codes to roster's, keeping the cause. `path` is the
 * database file, named in the messages that ask the user to act on it.
 */
export function translateSqliteError(error: unknown, where: string, path?: string): Error {
  const e = coerceError(error);
  if (e instanceof RosterError) return e;
  const code = (e as { code?: unknown }).code;
  // The driver reports extended codes (SQLITE_READONLY_DIRECTORY, SQLITE_BUSY_SNAPSHOT …); their primary code decides.
  const primary = typeof code === "string" ? code.split("_").slice(0, 2).join("_") : undefined;
  const file = path ?? "the database";
  const diskFull = () =>
    new RosterError("DISK_FULL", `${where}: the disk holding ${file} is full (${e.message}); free some space and try again`, { cause: e, retryable: false });
  if (primary === "SQLITE_FULL") return diskFull();
  if ((primary === "SQLITE_IOERR" || primary === "SQLITE_CANTOPEN") && path !== undefined && path !== ":memory:") {
    const free = freeBytes(path);
    if (free !== null && free < DISK_FULL_FREE_BYTES) return diskFull();
  }
  if (primary === "SQLITE_NOTADB" || primary === "SQLITE_CORRUPT") {
    return new RosterError("DATABASE_INVALID", `${where}: not a roster database (${e.message})`, { cause: e, retryable: false });
  }
  if (code === "SQLITE_READONLY_DIRECTORY") {
    return new RosterError("DATABASE_READONLY", `${where}: cannot create the database's -wal and -shm files: its folder is read-only (${e.message})`, {
      cause: e,
      retryable: false,
    });
  }
  if (primary === "SQLITE_READONLY" || primary === "SQLITE_CANTOPEN") {
    return new RosterError("DATABASE_READONLY", `${where}: cannot write the database (${e.message})`, { cause: e, retryable: false });
  }
  if (primary === "SQLITE_BUSY" || primary === "SQLITE_LOCKED") {
    return new RosterError("DATABASE_BUSY", `${where}: the database is locked by another connection and stayed locked past busy_timeout (${e.message})`, { cause: e });
  }
  if (primary === "SQLITE_IOERR") {
    return new RosterError("DATABASE_IO", `${where}: reading or writing ${file} failed (${e.message}, ${String(code)})`, { cause: e, retryable: false });
  }
  return e;
}

type PendingEmit = { [K in StoreEventName]: [K, StoreEventMap[K]] }[StoreEventName];

/** Events of a transaction that ended a lease of their persona (the settles, reaps and cancels that free its room). */
const LEASE_ENDS: ReadonlySet<StoreEventName> = new Set<StoreEventName>(["task:completed", "task:failed", "task:retrying", "task:released", "task:cancelled", "lease:expired"]);

/**
 * Runs write transactions: BEGIN IMMEDIATE, retried with p-retry when SQLITE_BUSY
 * outlasts busy_timeout, events emitted only after the commit.
 */
export class TransactionRunner {
  private pending: PendingEmit[] | null = null;
  /**
   * better-sqlite3's transaction wrapper, made once: BEGIN IMMEDIATE, the body, COMMIT (and a
   * savepoint when nested). Making one per write cost more than some of the writes' statements.
   */
  private readonly inTransaction: ReturnType<Db["transaction"]>;

  constructor(
    private readonly db: Db,
    private readonly bus: StoreEventBus,
    private readonly hooks: {
      onBusyRetry?: ((attempt: number) => void) | undefined;
      onTransaction?: ((name: string, durationMs: number) => void) | undefined;
      retries?: number;
    } = {},
  ) {
    this.inTransaction = db.transaction((body: () => unknown) => body());
  }

  /** A call after close() gets a typed error, not the driver's TypeError. */
  private assertOpen(name: string): void {
    if (!this.db.open) throw new RosterError("INVALID_STATE", `${name}: the store is closed`, { retryable: false });
  }

  /**
   * Personas a claim of this process found without room (their concurrency used up by other
   * claimants, docs/ARCHITECTURE.md rule 15): the next transaction that settles one of their
   * tasks emits claim:reopened for them, so the claimant claims at once, not at its poll.
   */
  private readonly roomWaits = new Map<string, number>();

  /**
   * A claim found no room for `persona` (roomWaits). Only a lease that ends after it frees the
   * room it waits for: in its own transaction (tasks.settleAndClaim) the settlements recorded
   * before the claim do not count.
   */
  waitForRoom(persona: string): void {
    this.roomWaits.set(persona, this.pending?.length ?? 0);
  }

  private roomFreed(pending: PendingEmit[]): void {
    const freed: string[] = [];
    pending.forEach(([event, payload], i) => {
      if (!LEASE_ENDS.has(event)) return;
      const persona = (payload as { persona: string }).persona;
      const mark = this.roomWaits.get(persona);
      if (mark === undefined || i < mark) return;
      this.roomWaits.delete(persona);
      freed.push(persona);
    });
    // Waits this transaction left stand for any lease end from the next one on.
    for (const persona of this.roomWaits.keys()) this.roomWaits.set(persona, 0);
    if (freed.length > 0) pending.push(["claim:reopened", { personas: freed, reason: "room" }]);
  }

  /** Queues an event to emit when the current transaction commits. */
  emit<K extends StoreEventName>(name: K, payload: StoreEventMap[K]): void {
    if (this.pending === null) throw new RosterError("INTERNAL", `event ${name} emitted outside a transaction`);
    this.pending.push([name, payload] as PendingEmit);
  }

  async write<T>(name: string, body: () => T): Promise<T> {
    this.assertOpen(name);
    const run = () => {
      this.pending = [];
      const started = performance.now();
      try {
        const value = this.inTransaction.immediate(body) as T;
        if (this.roomWaits.size > 0) this.roomFreed(this.pending);
        this.hooks.onTransaction?.(name, performance.now() - started);
        const events = this.pending;
        this.pending = null;
        return { value, events };
      } catch (error) {
        this.pending = null;
        const translated = translateSqliteError(error, name, this.db.name);
        if (translated instanceof RosterError && translated.code === "DATABASE_BUSY") throw translated;
        throw new AbortError(translated);
      }
    };
    // The first attempt outside p-retry (most writes take the lock at once): p-retry is
    // entered only after SQLITE_BUSY, replaying that failure as its first attempt, so
    // the retries, their delays and their reports are what they always were.
    let first: { value: T; events: PendingEmit[] } | undefined;
    let busy: unknown;
    try {
      first = run();
    } catch (error) {
      if (error instanceof AbortError) throw error.originalError;
      busy = error;
    }
    if (first !== undefined) {
      // Listeners hear of the commit after write() has returned its promise, as through p-retry.
      await undefined;
      for (const [event, payload] of first.events) this.bus.emit(event, payload as never);
      return first.value;
    }
    const { value, events } = await pRetry((attempt) => {
      if (attempt === 1) throw busy;
      return run();
    }, {
      retries: this.hooks.retries ?? BUSY_RETRIES_DEFAULT,
      minTimeout: BUSY_RETRY_MIN_MS,
      maxTimeout: BUSY_RETRY_MAX_MS,
      randomize: true,
      // p-retry also calls this after the last attempt; only a retry that will happen is reported.
      onFailedAttempt: ({ attemptNumber, retriesLeft }) => {
        if (retriesLeft <= 0) return;
        this.hooks.onBusyRetry?.(attemptNumber);
        this.bus.emit("db:busy-retry", { attempt: attemptNumber });
      },
    });
    for (const [event, payload] of events) this.bus.emit(event, payload as never);
    return value;
  }

  /**
   * Inside a write: runs `body` in a savepoint. When it throws, its writes roll back
   * and so do the events it queued, so a listener never hears of them.
   */
  savepoint<T>(body: () => T): T {
    if (this.pending === null) throw new RosterError("INTERNAL", "savepoint outside a transaction");
    const mark = this.pending.length;
    try {
      return this.inTransaction(body) as T;
    } catch (error) {
      this.pending.length = mark;
      throw error;
    }
  }

  /** A read; no transaction of its own beyond the statement's. */
  read<T>(name: string, body: () => T): T {
    this.assertOpen(name);
    try {
      return body();
    } catch (error) {
      throw translateSqliteError(error, name, this.db.name);
    }
  }
}

/** Transactions that tell the liveness judge how long each write kept this process (and so every holder) from writing. */
export class JudgedTransactions extends TransactionRunner {
  constructor(db: Db, bus: StoreEventBus, hooks: ConstructorParameters<typeof TransactionRunner>[2], private readonly judge: LivenessJudge) {
    super(db, bus, hooks);
  }

  override async write<T>(name: string, body: () => T): Promise<T> {
    const started = this.judge.monotonic();
    try {
      return await super.write(name, body);
    } finally {
      this.judge.noteWrite(started);
    }
  }
}
