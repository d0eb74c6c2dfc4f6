/**
 * What the chaos runner reads from the database beside the Store interface, for
 * each engine (issue 19: `npm run chaos -- --db postgres://…` runs the same faults,
 * checks and history on PostgreSQL): the event clock's sample (the largest
 * task_events id), derived state recomputed from scratch, the agents table, and
 * the write-lock probe of the SIGSTOP fault. Bench code may read a database
 * directly; roster's own code goes through src/store/.
 */
import Database from "better-sqlite3";
import pg from "pg";
import { isPostgresUrl } from "../../src/store/index.js";
import { sleep } from "./child.js";

export interface ChaosDatabase {
  /** The SQLite file or the postgres:// URL. */
  target: string;
  engine: "sqlite" | "postgres";
  /** The largest task_events id, or null when it cannot be read right now (the SQLite file locked, a query failed). */
  maxEventId(): Promise<number | null>;
  /** Derived state that disagrees with a recount (SQLite: task_counts and unmet_deps; PostgreSQL: unmet_deps, it keeps no counter table). */
  derivedProblems(): Promise<string[]>;
  agents(): Promise<Array<{ id: string; pid: number | null; registeredAt: number }>>;
  /**
   * Until `until`, whether something outside the runner holds up every writer:
   * SQLite: the write lock (BEGIN IMMEDIATE without waiting, every 40 ms);
   * PostgreSQL: a transaction left open by a stopped process (a session idle in
   * a transaction, holding row locks others may queue on). Returns when it was
   * first seen held for 3 probes in a row, or null.
   */
  probeWriteLock(until: number): Promise<number | null>;
  close(): Promise<void>;
}

export function openChaosDatabase(target: string): ChaosDatabase {
  return isPostgresUrl(target) ? postgresDatabase(target) : sqliteDatabase(target);
}

function sqliteDatabase(dbPath: string): ChaosDatabase {
  let reader: Database.Database | null = null;
  const open = () => (reader ??= new Database(dbPath, { readonly: true, fileMustExist: true }));
  return {
    target: dbPath,
    engine: "sqlite",
    maxEventId: async () => {
      try {
        return open().prepare("SELECT coalesce(max(id), 0) FROM task_events").pluck().get() as number;
      } catch {
        return null;
      }
    },
    derivedProblems: async () => {
      const db = open();
      const counts = db
        .prepare(
          `SELECT c.persona_id AS persona, c.status, c.n,
             (SELECT count(*) FROM task_status s WHERE s.persona_id = c.persona_id AND s.status = c.status) AS actual
           FROM task_counts c`,
        )
        .all() as Array<{ persona: string; status: string; n: number; actual: number }>;
      const unmet = db
        .prepare(
          `SELECT s.task_id AS id, s.unmet_deps AS stored,
             (SELECT count(*) FROM task_dependencies d JOIN task_status o ON o.task_id = d.depends_on
              WHERE d.task_id = s.task_id AND o.status <> 'completed') AS actual
           FROM task_status s`,
        )
        .all() as Array<{ id: number; stored: number; actual: number }>;
      return [
        ...counts.filter((c) => c.n !== c.actual).map((c) => `task_counts says ${c.n} ${c.persona} tasks are ${c.status}, there are ${c.actual}`),
        ...unmet.filter((u) => u.stored !== u.actual).map((u) => `task ${u.id}: unmet_deps is ${u.stored}, ${u.actual} dependencies are not completed`),
      ];
    },
    agents: async () => open().prepare("SELECT id, pid, registered_at AS registeredAt FROM agents ORDER BY registered_at").all() as Array<{ id: string; pid: number | null; registeredAt: number }>,
    probeWriteLock: async (until) => {
      const db = new Database(dbPath, { timeout: 0 });
      let busySince: number | null = null;
      let busyProbes = 0;
      try {
        while (Date.now() < until) {
          try {
            db.exec("BEGIN IMMEDIATE");
            db.exec("ROLLBACK");
            busySince = null;
            busyProbes = 0;
          } catch {
            busySince ??= Date.now();
            if (++busyProbes >= 3) {
              await sleep(Math.max(0, until - Date.now()));
              return busySince;
            }
          }
          await sleep(40);
        }
        return null;
      } finally {
        db.close();
      }
    },
    close: async () => {
      reader?.close();
      reader = null;
    },
  };
}

function postgresDatabase(url: string): ChaosDatabase {
  let client: Promise<pg.Client> | null = null;
  const connect = () =>
    (client ??= (async () => {
      const c = new pg.Client({ connectionString: url });
      c.on("error", () => undefined); // a dropped connection: the next call opens another
      await c.connect();
      return c;
    })().catch((error: unknown) => {
      client = null;
      throw error;
    }));
  const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> => {
    const c = await connect();
    try {
      return (await c.query<R>(sql, params)).rows;
    } catch (error) {
      client = null;
      await c.end().catch(() => undefined);
      throw error;
    }
  };
  return {
    target: url,
    engine: "postgres",
    maxEventId: async () => {
      try {
        return Number((await query<{ n: string }>("SELECT coalesce(max(id), 0) AS n FROM task_events"))[0]!.n);
      } catch {
        return null;
      }
    },
    derivedProblems: async () => {
      const unmet = await query<{ id: string; stored: number; actual: string }>(
        `SELECT s.task_id AS id, s.unmet_deps AS stored,
           (SELECT count(*) FROM task_dependencies d JOIN task_status o ON o.task_id = d.depends_on
            WHERE d.task_id = s.task_id AND o.status <> 'completed') AS actual
         FROM task_status s`,
      );
      return unmet.filter((u) => u.stored !== Number(u.actual)).map((u) => `task ${u.id}: unmet_deps is ${u.stored}, ${u.actual} dependencies are not completed`);
    },
    agents: async () =>
      (await query<{ id: string; pid: number | null; registered_at: string }>("SELECT id, pid, registered_at FROM agents ORDER BY registered_at")).map((a) => ({
        id: a.id,
        pid: a.pid,
        registeredAt: Number(a.registered_at),
      })),
    probeWriteLock: async (until) => {
      // A session of this database idle in a transaction for 3 probes running (its process stopped mid-transaction).
      let busySince: number | null = null;
      let busyProbes = 0;
      while (Date.now() < until) {
        let held = false;
        try {
          const rows = await query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction'
               AND state_change < now() - interval '100 milliseconds'`,
          );
          held = Number(rows[0]!.n) > 0;
        } catch {
          held = false;
        }
        if (held) {
          busySince ??= Date.now();
          if (++busyProbes >= 3) {
            await sleep(Math.max(0, until - Date.now()));
            return busySince;
          }
        } else {
          busySince = null;
          busyProbes = 0;
        }
        await sleep(40);
      }
      return null;
    },
    close: async () => {
      const c = client;
      client = null;
      if (c !== null) await (await c.catch(() => null))?.end().catch(() => undefined);
    },
  };
}
