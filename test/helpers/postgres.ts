import pg from "pg";
import { afterAll, beforeAll, it } from "vitest";
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

/** `url` with every connection's search_path set to `schema`: a store opened on it has tables of its own. */
export function withSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set("options", `-c search_path=${schema}`);
  return u.toString();
}

export interface PgAdmin {
  /** A query on the admin connection (the file's database; schema-qualify the tables of a test's schema). */
  query: pg.Client["query"];
  /** Creates schema `name` and returns the file database's URL whose connections use it (withSchema). */
  schema(name: string): Promise<string>;
}

/**
 * For a describe block (call it inside, so a skipped block opens nothing): an admin
 * connection to the file's database, connected before the block's tests and ended after them.
 */
export function useAdmin(server: FilePostgres): PgAdmin {
  let client: pg.Client | undefined;
  beforeAll(async () => {
    client = new pg.Client({ connectionString: server.url() });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
  });
  const connected = (): pg.Client => {
    if (client === undefined) throw new Error("useAdmin: the admin connection is open only inside the block's tests and hooks");
    return client;
  };
  return {
    query: ((...args: unknown[]) => (connected().query as (...a: unknown[]) => unknown).apply(connected(), args)) as pg.Client["query"],
    async schema(name) {
      await connected().query(`CREATE SCHEMA ${name}`);
      return withSchema(server.url(), name);
    },
  };
}

/** A node of `EXPLAIN (FORMAT JSON)`'s plan, the fields the plan tests read. */
export type PlanNode = { "Node Type": string; "Index Name"?: string; "Relation Name"?: string; "Parent Relationship"?: string; Plans?: PlanNode[] };

/** The plan's nodes, the root first, depth first. */
export function planNodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(planNodes)];
}

/**
 * The plans of every statement `run` sends on `client`, the nested statements of functions
 * included (auto_explain, which reports each as a notice to this session), inside a transaction
 * rolled back after it. `planCacheMode` is the session's plan_cache_mode while it runs;
 * `analyze` adds what each node really did (rows, loops, rows a filter removed).
 */
export async function autoExplained<T extends PlanNode = PlanNode>(
  client: pg.Client,
  options: { planCacheMode: string; analyze?: boolean },
  run: () => Promise<unknown>,
): Promise<T[][]> {
  const plans: T[][] = [];
  const onNotice = (n: { message?: string }) => {
    const at = n.message?.indexOf("{") ?? -1;
    if (at >= 0 && /plan:/.test(n.message!)) plans.push(planNodes((JSON.parse(n.message!.slice(at)) as { Plan: PlanNode }).Plan) as T[]);
  };
  client.on("notice", onNotice);
  try {
    await client.query("BEGIN");
    await client.query("LOAD 'auto_explain'");
    await client.query("SET LOCAL auto_explain.log_min_duration = 0; SET LOCAL auto_explain.log_nested_statements = on; SET LOCAL auto_explain.log_format = json");
    if (options.analyze === true) await client.query("SET LOCAL auto_explain.log_analyze = on");
    await client.query(`SET LOCAL client_min_messages = log; SET LOCAL plan_cache_mode = ${options.planCacheMode}`);
    await run();
  } finally {
    await client.query("ROLLBACK");
    client.off("notice", onNotice);
  }
  return plans;
}

/** The nodes of the plan PostgreSQL picks for `sql` with these values (EXPLAIN, not run). */
export async function explainPlan(client: pg.Client, sql: string, values: unknown[]): Promise<PlanNode[]> {
  const { rows } = await client.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${sql}`, values);
  return planNodes(rows[0]!["QUERY PLAN"][0]!.Plan);
}
