/**
 * The store's public face. Everything outside src/store/ imports from here and
 * sees the interface only; the SQLite implementation is chosen by openStore.
 */
import { SqliteStore } from "./sqlite/store.js";
import type { Store, StoreOptions } from "./types.js";

export * from "./types.js";
export * from "./economics.js";
export { StoreEventBus, type StoreEventMap, type StoreEventName } from "./events.js";
export { planSchema, taskInputSchema, validateBatch, serializeJson, formatIssues, MAX_PAYLOAD_BYTES_DEFAULT } from "./input.js";

export async function openStore(options: StoreOptions & { now?: number }): Promise<Store> {
  return new SqliteStore(options);
}
