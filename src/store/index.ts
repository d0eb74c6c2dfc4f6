/**
 * The store's public face. Everything outside src/store/ imports from here and
 * sees the interface only; openStore picks the implementation from the path:
 * a `postgres://` or `postgresql://` URL (`--db`, ROSTER_DB) opens the PostgreSQL
 * store (src/store/postgres/, docs/postgres.md), anything else a SQLite file.
 */
import { isPostgresUrl } from "./postgres/connection.js";
import { PostgresStore } from "./postgres/store.js";
import { SqliteStore } from "./sqlite/store.js";
import type { Store, StoreOptions } from "./types.js";

export * from "./types.js";
export * from "./economics.js";
export { StoreEventBus, type StoreEventMap, type StoreEventName } from "./events.js";
export { planSchema, taskInputSchema, validateBatch, serializeJson, formatIssues, MAX_PAYLOAD_BYTES_DEFAULT } from "./input.js";

export { isPostgresUrl } from "./postgres/connection.js";
export { copyDatabase, COPY_BATCH_ROWS_DEFAULT, COPY_BATCH_ROWS_MAX, type CopyOptions, type CopyProgress, type CopySummary } from "./copy/copy.js";

export async function openStore(options: StoreOptions & { now?: number }): Promise<Store> {
  if (isPostgresUrl(options.path)) return PostgresStore.open(options);
  return new SqliteStore(options);
}
