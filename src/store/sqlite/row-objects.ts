import type Database from "better-sqlite3";

/**
 * A statement's rows as plain objects, read raw. better-sqlite3 builds each row object
 * through V8's API, one named property at a time, which cost the one-task claim and
 * completion more user-space instructions than their SQL (about 120k of 780k a task under
 * cachegrind, issue 14). Read as arrays, the same objects are made by a function compiled
 * once from the statement's own column names: an object literal V8 builds in one step.
 * Only for statements that return rows; the objects are the ones the statement gave before.
 */
export interface RowObjects<Row> {
  get(...params: unknown[]): Row | undefined;
  all(...params: unknown[]): Row[];
}

export function rowObjects<Row>(stmt: Database.Statement): RowObjects<Row> {
  const names = stmt.columns().map((c) => c.name);
  if (new Set(names).size !== names.length) throw new Error(`rowObjects: duplicate column names in ${stmt.source.slice(0, 80)}`);
  // Column names are the store's own SQL text, quoted as JSON string literals.
  const toObject = new Function("r", `return { ${names.map((n, i) => `${JSON.stringify(n)}: r[${i}]`).join(", ")} };`) as (r: unknown[]) => Row;
  const raw = stmt.raw(true);
  return {
    get: (...params) => {
      const r = raw.get(...params) as unknown[] | undefined;
      return r === undefined ? undefined : toObject(r);
    },
    all: (...params) => (raw.all(...params) as unknown[][]).map(toObject),
  };
}
