import { openStore } from "../../src/store/index.js";
import { sqliteTableCounts } from "../../src/store/sqlite/introspect.js";
import { makeTempDir } from "../helpers/tmp.js";
import { describeStoreConformance } from "./conformance.js";

describeStoreConformance("sqlite :memory:", async ({ now }) => {
  const store = await openStore({ path: ":memory:", now });
  return { store, rowCounts: async () => sqliteTableCounts(store), close: () => store.close() };
});

describeStoreConformance("sqlite file", async ({ now }) => {
  const temp = makeTempDir("roster-conformance-");
  const store = await openStore({ path: temp.path("roster.db"), now });
  return {
    store,
    rowCounts: async () => sqliteTableCounts(store),
    close: async () => {
      await store.close();
      temp.cleanup();
    },
  };
});
