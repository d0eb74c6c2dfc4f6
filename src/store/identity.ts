import { RosterError } from "../errors.js";
import type { DatabaseIdentity } from "./service-types.js";

/** The rows of roster_meta (migrations/0014, migrations/postgres/0018) as a DatabaseIdentity. */
export function identityOf(rows: ReadonlyArray<{ key: string; value: string }>): DatabaseIdentity {
  const byKey = new Map(rows.map((row) => [row.key, row.value]));
  const id = byKey.get("database_id");
  if (id === undefined || !/^[a-z][a-z0-9]{3,31}$/.test(id)) {
    throw new RosterError("DATABASE_INVALID", `the database's identity (roster_meta.database_id) is ${id === undefined ? "missing" : `not valid: "${id}"`}`, { retryable: false });
  }
  return { id, legacyTaskIdsUpTo: Number(byKey.get("legacy_task_ids_upto") ?? "0") };
}
