import type { TableInfo } from "./tables.js";

/**
 * The two ends of `roster db copy`, one implementation per database
 * (sqlite-end.ts, postgres-end.ts). A source reads one consistent snapshot; a
 * target writes everything in one transaction, so a copy that stops for any reason
 * leaves the target as it was.
 */

/** An agent (supervisor or MCP worker) whose heartbeat is recent on the source. */
export interface LiveAgent {
  id: string;
  kind: string;
  hostname: string | null;
  pid: number | null;
  /** Epoch ms of its last heartbeat. */
  lastHeartbeat: number;
  /** Epoch ms at which it stops looking alive unless it beats again (last heartbeat + its heartbeat timeout). */
  aliveUntil: number;
}

/** What looks alive on a source at some moment. */
export interface LiveSource {
  /** The moment judged (epoch ms): the `now` given, or on PostgreSQL the server's clock (see live()). */
  at: number;
  agents: LiveAgent[];
  /** Leases (claimed or in_progress tasks) not yet past their renewal stamp. */
  leases: number;
  /** Epoch ms of the latest of those stamps, or null. */
  leasesUntil: number | null;
}

export interface CopySource {
  /** `--from …` as messages name it (a URL's password hidden). */
  readonly label: string;
  /** Every table of the snapshot, by name. */
  tables(): Promise<Map<string, TableInfo>>;
  count(table: string): Promise<number>;
  /**
   * Agents still marked active whose heartbeat is younger than their heartbeat
   * timeout at `now`, and how many leases have not reached their renewal stamp.
   * PostgreSQL judges at the server's clock instead, since every host stamps on it
   * (docs/ARCHITECTURE.md rule 16). Only a guard against copying from a database
   * still in use: it decides nothing about a lease or an agent.
   */
  live(now: number): Promise<LiveSource>;
  /** The rows of `table` in primary-key order, `columns` only, at most `rows` at a time. */
  batches(table: TableInfo, columns: string[], rows: number): AsyncIterable<unknown[][]>;
  /** Ends the snapshot and closes the connection. */
  close(): Promise<void>;
}

export interface CopyTarget {
  readonly label: string;
  /** Every table the target's schema has (after its own migrations), by name. */
  tables(): Promise<Map<string, TableInfo>>;
  count(table: string): Promise<number>;
  /** Writes one batch; `merge`: a row whose key is there replaces it. */
  insert(table: TableInfo, columns: string[], rows: unknown[][], merge: boolean): Promise<void>;
  /** After a table is copied: moves its identity sequences past the ids now in it; returns column → next id. */
  advanceIdentity(table: TableInfo): Promise<Record<string, number>>;
  /** After the last table: what the target derives from copied rows (SQLite: concurrency keys' running counts). */
  finish(): Promise<void>;
  /** Commits the one transaction and closes. */
  commit(): Promise<void>;
  /** Rolls everything back (or removes the file being made) and closes; never throws. */
  abort(): Promise<void>;
}
