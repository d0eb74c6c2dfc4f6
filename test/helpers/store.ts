import { expect } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { openStore, type Store, type StoreOptions } from "../../src/store/index.js";
import { sqliteTableCounts } from "../../src/store/sqlite/introspect.js";
import { syncTestPersonas } from "./personas.js";
import { makeTempDir, type TempDir } from "./tmp.js";

export const T0 = 1_700_000_000_000;

export interface TestStore {
  store: Store;
  clock: ManualClock;
  /** The database file, or ":memory:". */
  path: string;
  /** Row count of every table (SQLite introspection). */
  rowCounts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/**
 * A freshly migrated SQLite store with the test personas synced: on a file in its
 * own temp folder (default) or in memory. `close()` also removes the folder.
 */
export async function openTestStore(
  options: { memory?: boolean; personas?: boolean; start?: number } & Partial<StoreOptions> = {},
): Promise<TestStore> {
  const clock = new ManualClock(options.start ?? T0);
  const temp: TempDir | null = options.memory === true ? null : makeTempDir("roster-store-");
  const path = temp === null ? ":memory:" : temp.path("roster.db");
  const { memory: _memory, personas: _personas, start: _start, ...storeOptions } = options;
  const store = await openStore({ monotonic: () => clock.now(), ...storeOptions, path, now: clock.now() });
  if (options.personas !== false) await syncTestPersonas(store, clock.now());
  return {
    store,
    clock,
    path,
    rowCounts: async () => sqliteTableCounts(store),
    close: async () => {
      await store.close();
      temp?.cleanup();
    },
  };
}

/**
 * After the upgrade that stores "no next fire" as such (SQLite 0013, PostgreSQL 0017): of two
 * schedules written by an older version, "parked" at Number.MAX_SAFE_INTEGER has no next fire
 * and is never due, and "live" keeps its time (T0 + 60 s).
 */
export async function expectParkedScheduleUpgraded(store: Store): Promise<void> {
  expect((await store.schedules.list()).map((s) => [s.id, s.nextFireAt])).toEqual([
    ["live", T0 + 60_000],
    ["parked", null],
  ]);
  expect(await store.schedules.due({ now: 8_640_000_000_000_000 })).toMatchObject([{ id: "live" }]);
}
