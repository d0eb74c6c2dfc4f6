/**
 * The store's public face. Everything outside src/store/ imports from here and
 * sees the interface only; openStore picks the implementation from the path:
 * a `postgres://` or `postgresql://` URL (`--db`, ROSTER_DB) opens the PostgreSQL
 * store (src/store/postgres/, docs/postgres.md), anything else a SQLite file.
 */
import { RosterError } from "../errors.js";
import { isPostgresUrl } from "./postgres/connection.js";
import { retryWhileUnreachable } from "./retry.js";
import { PostgresStore } from "./postgres/store.js";
import { SqliteStore } from "./sqlite/store.js";
import type { Store, StoreOptions } from "./types.js";

export * from "./types.js";
export * from "./economics.js";
export { StoreEventBus, type StoreEventMap, type StoreEventName } from "./events.js";
export { assertPersonaKnown } from "./suggest.js";
export { planSchema, taskInputSchema, validateBatch, serializeJson, formatIssues, MAX_PAYLOAD_BYTES_DEFAULT } from "./input.js";

export { isPostgresUrl } from "./postgres/connection.js";
export { copyDatabase, COPY_BATCH_ROWS_DEFAULT, COPY_BATCH_ROWS_MAX, type CopyOptions, type CopyProgress, type CopySummary } from "./copy/copy.js";

export async function openStore(options: StoreOptions & { now?: number }): Promise<Store> {
  if (isPostgresUrl(options.path)) return PostgresStore.open(options);
  return new SqliteStore(options);
}

/** How long the long-running commands (`roster start`, `roster mcp`) wait at start for a PostgreSQL server they cannot reach, in ms. */
export const OPEN_WAIT_MS_DEFAULT = 60_000;

/**
 * openStore() for a process that runs for long: a PostgreSQL server it cannot reach yet (down,
 * restarting, out of connection slots: DATABASE_IO) is tried again with backoff (0.25 s doubling
 * to 5 s), each try logged, for up to `waitMs`, as the running supervisor rides out the same
 * outage (docs/ARCHITECTURE.md rule 17); hosts started with their database, or during its
 * restart, then come up by themselves. A SQLite file is opened once: what keeps it from opening
 * does not pass by itself.
 */
export async function openStoreWaiting(
  options: StoreOptions & { now?: () => number },
  wait: { logger: { warn(data: object, message: string): void }; waitMs?: number },
): Promise<Store> {
  const { now, ...rest } = options;
  const open = () => openStore({ ...rest, ...(now === undefined ? {} : { now: now() }) });
  if (!isPostgresUrl(options.path)) return open();
  return retryWhileUnreachable(open, {
    withinMs: wait.waitMs ?? OPEN_WAIT_MS_DEFAULT,
    firstMs: 250,
    maxMs: 5_000,
    retryable: (error) => error instanceof RosterError && error.code === "DATABASE_IO",
    onRetry: (error, waitMs) => wait.logger.warn({ err: { code: (error as RosterError).code, message: (error as RosterError).message }, retryInMs: waitMs }, "the database cannot be reached yet; trying again"),
  });
}
