import { afterAll, it } from "vitest";
import { startTestPostgres, type PostgresServer } from "../../bench/lib/postgres.js";

/**
 * PostgreSQL for the tests (issue 19): the private cluster of bench/lib/postgres.ts
 * (shared with the benchmarks), or the server named by ROSTER_TEST_PG_URL when set.
 * Each test file gets a database of its own (usePostgres), dropped at the end with
 * the cluster.
 *
 * When no server can be had: under CI=true the file gets a failing test saying why
 * (it never skips); elsewhere its PostgreSQL tests are skipped, saying why.
 */

export { findPostgresBin, startPrivateCluster, startTestPostgres, type PostgresAvailability, type PostgresServer } from "../../bench/lib/postgres.js";

export interface FilePostgres {
  /** False when no server could be had (the file's tests are skipped, or under CI one test fails). */
  available: boolean;
  /** Why not, when not available. */
  reason: string;
  /** The file's own database. Only call inside a test or hook when available. */
  url(): string;
  server(): PostgresServer;
}

/**
 * For a test file, at top level (`const pg = await usePostgres()`): a server and one
 * database for this file, removed in afterAll. Use `describe.skipIf(!pg.available)`;
 * when it is not available and CI=true, this registers a test that fails with the
 * reason, so CI never passes by skipping.
 */
export async function usePostgres(): Promise<FilePostgres> {
  const started = await startTestPostgres();
  if (!started.ok) {
    const reason = `PostgreSQL tests skipped: ${started.reason}`;
    if (process.env.CI === "true") {
      it("has a PostgreSQL server (CI=true: a PostgreSQL test fails rather than skips)", () => {
        throw new Error(`no PostgreSQL server could be started, and CI=true: ${started.reason}`);
      });
    } else {
      console.warn(reason);
    }
    const none = (): never => {
      throw new Error(reason);
    };
    return { available: false, reason: started.reason, url: none, server: none };
  }
  const server = started.server;
  let url: string;
  try {
    url = await server.newDatabase();
  } catch (error) {
    await server.stop();
    throw error;
  }
  afterAll(async () => {
    await server.stop();
  });
  return { available: true, reason: "", url: () => url, server: () => server };
}
