import { openStore } from "../../src/store/index.js";
import { sqliteTableCounts } from "../../src/store/sqlite/introspect.js";
import { makeTempDir } from "../helpers/tmp.js";
import { describeStoreConformance } from "./conformance.js";

describeStoreConformance("sqlite :memory:", async ({ now, monotonic }) => {
  const store = await openStore({ path: ":memory:", now, monotonic });
  return { store, rowCounts: async () => sqliteTableCounts(store), close: () => store.close() };
});

describeStoreConformance("sqlite file", async ({ now, monotonic }) => {
  const temp = makeTempDir("roster-conformance-");
  const store = await openStore({ path: temp.path("roster.db"), now, monotonic });
  return {
    store,
    rowCounts: async () => sqliteTableCounts(store),
    close: async () => {
      await store.close();
      temp.cleanup();
    },
  };
});
