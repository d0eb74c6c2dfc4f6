import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pRetry, { AbortError } from "p-retry";
import { RosterError, coerceError } from "../../errors.js";
import type { StoreEventBus, StoreEventMap, StoreEventName } from "../events.js";
import { assertRosterOrEmpty, runMigrations } from "./migrate.js";

export type Db = Database.Database;

export const BUSY_TIMEOUT_MS_DEFAULT = 5_000;
/** Extra attempts, with backoff, for a transaction that still met SQLITE_BUSY after busy_timeout. */
export const BUSY_RETRIES_DEFAULT = 5;

/** The package's own folder of NNNN_name.sql files, found from this module in src/ or dist/src/. */
export function defaultMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "migrations", "0001_init.sql"))) return join(dir, "migrations");
    dir = dirname(dir);
  }
  throw new RosterError("INTERNAL", "cannot find roster's migrations/ folder next to the package");
}

export interface OpenOptions {
  path: string;
  synchronous: "NORMAL" | "FULL";
  busyTimeoutMs: number;
  readonly: boolean;
  migrationsDir: string;
  now: number;
}

/** Maps the driver's error codes to roster's, keeping the cause. */
export function translateSqliteError(error: unknown, where: string): Error {
  const e = coerceError(error);
  const code = (e as { code?: unknown }).code;
  // The driver reports extended codes (SQLITE_READONLY_DIRECTORY, SQLITE_BUSY_SNAPSHOT …); their primary code decides.
  const primary = typeof code === "string" ? code.split("_").slice(0, 2).join("_") : undefined;
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
  return e;
}

export function openDatabase(options: OpenOptions): Db {
  let db: Db;
  try {
    db = new Database(options.path, { readonly: options.readonly, fileMustExist: options.readonly });
  } catch (error) {
    throw translateSqliteError(error, `opening ${options.path}`);
  }
  try {
    db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
    // Before the journal-mode switch, which would rewrite another program's file.
    assertRosterOrEmpty(db, options.path);
    if (!options.readonly) {
      db.pragma("journal_mode = WAL");
    }
    db.pragma(`synchronous = ${options.synchronous}`);
    db.pragma("foreign_keys = ON");
    // Keep temp b-trees (ORDER BY, UNION in recursive CTEs) in memory.
    db.pragma("temp_store = MEMORY");
    runMigrations(db, { dir: options.migrationsDir, readonly: options.readonly, now: options.now, path: options.path });
  } catch (error) {
    db.close();
    throw error instanceof RosterError ? error : translateSqliteError(error, `opening ${options.path}`);
  }
  return db;
}

type PendingEmit = { [K in StoreEventName]: [K, StoreEventMap[K]] }[StoreEventName];

/**
 * Runs write transactions: BEGIN IMMEDIATE, retried with p-retry when SQLITE_BUSY
 * outlasts busy_timeout, events emitted only after the commit.
 */
export class TransactionRunner {
  private pending: PendingEmit[] | null = null;

  constructor(
    private readonly db: Db,
    private readonly bus: StoreEventBus,
    private readonly hooks: {
      onBusyRetry?: ((attempt: number) => void) | undefined;
      onTransaction?: ((name: string, durationMs: number) => void) | undefined;
      retries?: number;
    } = {},
  ) {}

  /** A call after close() gets a typed error, not the driver's TypeError. */
  private assertOpen(name: string): void {
    if (!this.db.open) throw new RosterError("INVALID_STATE", `${name}: the store is closed`, { retryable: false });
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
        const value = this.db.transaction(body).immediate();
        this.hooks.onTransaction?.(name, performance.now() - started);
        const events = this.pending;
        this.pending = null;
        return { value, events };
      } catch (error) {
        this.pending = null;
        const translated = translateSqliteError(error, name);
        if (translated instanceof RosterError && translated.code === "DATABASE_BUSY") throw translated;
        throw new AbortError(translated);
      }
    };
    const { value, events } = await pRetry(run, {
      retries: this.hooks.retries ?? BUSY_RETRIES_DEFAULT,
      minTimeout: 20,
      maxTimeout: 500,
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
      return this.db.transaction(body)();
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
      throw translateSqliteError(error, name);
    }
  }
}
