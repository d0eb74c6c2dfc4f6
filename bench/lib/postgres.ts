import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/**
 * A private PostgreSQL server for the tests and the benchmarks (issue 19): a cluster
 * started from the Debian packages (`apt-get install -y postgresql`), `initdb` into a
 * temp folder (as `nobody` when this is root), `postgres` on a free 127.0.0.1 port
 * with its socket in that folder; or the server named by ROSTER_TEST_PG_URL when set
 * (a role that may CREATE DATABASE). It lives here, in bench/lib, because the
 * benchmarks run built code (dist/bench) while test/ is never built;
 * test/helpers/postgres.ts adds the per-test-file database on top of it.
 */

export interface PostgresServer {
  /** Connection URL of the server's maintenance database (postgres), as a superuser or a role that may create databases. */
  adminUrl: string;
  /** Where it came from: "private cluster (…)" or "ROSTER_TEST_PG_URL". */
  source: string;
  /** Creates a fresh database and returns its URL. */
  newDatabase(prefix?: string): Promise<string>;
  /** Drops the databases it created; stops the cluster if it started one. */
  stop(): Promise<void>;
}

export type PostgresAvailability = { ok: true; server: PostgresServer } | { ok: false; reason: string };

const PG_BIN_ROOT = "/usr/lib/postgresql";

/** The newest installed PostgreSQL's bin folder (Debian layout), or null. */
export function findPostgresBin(): string | null {
  if (!existsSync(PG_BIN_ROOT)) return null;
  const versions = readdirSync(PG_BIN_ROOT)
    .filter((v) => existsSync(join(PG_BIN_ROOT, v, "bin", "initdb")) && existsSync(join(PG_BIN_ROOT, v, "bin", "postgres")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length === 0 ? null : join(PG_BIN_ROOT, versions[0]!, "bin");
}

/** uid and gid of `nobody` (postgres refuses to run as root), from /etc/passwd. */
function nobody(): { uid: number; gid: number } | null {
  try {
    const line = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .find((l) => l.startsWith("nobody:"));
    if (line === undefined) return null;
    const [, , uid, gid] = line.split(":");
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return null;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], ids: { uid: number; gid: number } | null): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...(ids === null ? {} : ids), env: { ...process.env, LC_ALL: "C" } });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (error) => resolve({ code: -1, output: String(error) }));
    child.on("close", (code) => resolve({ code, output }));
  });
}

/** Tries to connect until the server answers, the process exits, or `ms` pass. */
async function waitReady(url: string, child: ChildProcess, log: () => string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let exited: number | null | undefined;
  child.once("exit", (code) => (exited = code));
  for (;;) {
    if (exited !== undefined) throw new Error(`postgres exited with ${String(exited)} while starting: ${log().slice(-2000)}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query("SELECT 1");
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${ms} ms (${String(error)}): ${log().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function makeServer(adminUrl: string, source: string, onStop: () => Promise<void>): PostgresServer {
  const created: string[] = [];
  return {
    adminUrl,
    source,
    async newDatabase(prefix = "roster_test") {
      const name = `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
      } finally {
        await admin.end();
      }
      created.push(name);
      return databaseUrl(adminUrl, name);
    },
    async stop() {
      if (created.length > 0) {
        const admin = new pg.Client({ connectionString: adminUrl });
        try {
          await admin.connect();
          for (const name of created.splice(0)) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        } catch {
          // The cluster goes with its folder below; an external server keeps a database named roster_test_<pid>_….
        } finally {
          await admin.end().catch(() => {});
        }
      }
      await onStop();
    },
  };
}

/** The settings a private cluster runs with unless told otherwise: fast and throwaway, for tests. */
export const TEST_CLUSTER_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
  max_connections: "200",
});

export interface PrivateClusterOptions {
  /** Server settings passed as `-c name=value` (default TEST_CLUSTER_SETTINGS). */
  settings?: Readonly<Record<string, string>>;
  /** Addresses to listen on besides 127.0.0.1 (a veth end for other network namespaces). */
  extraListenAddresses?: string[];
  /** Lines appended to pg_hba.conf before the start ("host all all 10.0.0.0/8 trust"). */
  hbaLines?: string[];
}

/**
 * Starts a private cluster: initdb into a temp folder (as `nobody` when this is root,
 * since postgres will not run as root), then postgres on a free port with its socket
 * in that folder, by default with fsync off (the data is thrown away). Resolves once
 * it accepts connections; stop() shuts it down (fast) and removes the folder.
 */
export async function startPrivateCluster(options: PrivateClusterOptions = {}): Promise<PostgresServer> {
  const bin = findPostgresBin();
  if (bin === null) throw new Error(`no PostgreSQL installed (no ${PG_BIN_ROOT}/*/bin/initdb); apt-get install -y postgresql, or set ROSTER_TEST_PG_URL`);
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const ids = isRoot ? nobody() : null;
  if (isRoot && ids === null) throw new Error("running as root and there is no user nobody to run postgres as");
  const dir = mkdtempSync(join(tmpdir(), "roster-pg-"));
  chmodSync(dir, 0o755);
  if (ids !== null) chownSync(dir, ids.uid, ids.gid);
  const data = join(dir, "data");
  const init = await run(join(bin, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], ids);
  if (init.code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${String(init.code)}): ${init.output.slice(-2000)}`);
  }
  if (options.hbaLines !== undefined && options.hbaLines.length > 0) appendFileSync(join(data, "pg_hba.conf"), `\n${options.hbaLines.join("\n")}\n`);
  const port = await freePort();
  let log = "";
  const child = spawn(
    join(bin, "postgres"),
    [
      ...["-D", data, "-p", String(port), "-k", dir],
      ...["-c", `listen_addresses=${["127.0.0.1", ...(options.extraListenAddresses ?? [])].join(",")}`],
      ...Object.entries(options.settings ?? TEST_CLUSTER_SETTINGS).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
    ],
    { stdio: ["ignore", "pipe", "pipe"], ...(ids === null ? {} : ids), env: { ...process.env, LC_ALL: "C" } },
  );
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  // If this process dies without stop(), the cluster goes with it.
  const killOnExit = () => child.kill("SIGQUIT");
  process.once("exit", killOnExit);
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const stop = async () => {
    process.removeListener("exit", killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGINT"); // fast shutdown: ends sessions, no checkpoint wait worth having
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(adminUrl, child, () => log, 30_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return makeServer(adminUrl, `private cluster (${bin}, port ${port}, ${dir})`, stop);
}

/** ROSTER_TEST_PG_URL's server, or a private cluster; why not, when neither can be had. */
export async function startTestPostgres(): Promise<PostgresAvailability> {
  const external = process.env.ROSTER_TEST_PG_URL;
  if (external !== undefined && external !== "") {
    const client = new pg.Client({ connectionString: external });
    try {
      await client.connect();
      await client.query("SELECT 1");
    } catch (error) {
      return { ok: false, reason: `ROSTER_TEST_PG_URL: cannot connect (${String(error)})` };
    } finally {
      await client.end().catch(() => {});
    }
    return { ok: true, server: makeServer(external, "ROSTER_TEST_PG_URL", async () => {}) };
  }
  try {
    return { ok: true, server: await startPrivateCluster() };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

