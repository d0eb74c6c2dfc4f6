import { describe } from "vitest";
import { openStore } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { describeStoreConformance } from "./conformance.js";

/**
 * The store conformance suite on PostgreSQL (issue 19): a private cluster (or
 * ROSTER_TEST_PG_URL), one database for this file and a fresh schema per test.
 * Every group runs, unchanged, as on SQLite.
 */

const server = await usePostgres();

describe.skipIf(!server.available)("postgres", () => {
  const admin = useAdmin(server);
  let n = 0;

  describeStoreConformance(
    "postgres",
    async ({ now, monotonic }) => {
      const schema = `t${++n}_${Date.now().toString(36)}`;
      const store = await openStore({ path: await admin.schema(schema), now, monotonic });
      return {
        store,
        rowCounts: async () => {
          const { rows } = await admin.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY 1", [schema]);
          const out: Record<string, number> = {};
          for (const { t } of rows) out[t] = (await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.${t}`)).rows[0]!.n;
          return out;
        },
        close: async () => {
          await store.close();
          await admin.query(`DROP SCHEMA ${schema} CASCADE`);
        },
      };
    },
  );
});
