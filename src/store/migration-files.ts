/**
 * The migration files of both engines: the package's migrations/ folder (SQLite's, with
 * migrations/postgres/ beside it) and its NNNN_name.sql files with their checksums, which
 * schema_migrations records so an applied file that changed is refused at open.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RosterError } from "../errors.js";

/** The package's own folder of NNNN_name.sql files, found from this module in src/ or dist/src/. */
export function defaultMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "migrations", "0001_init.sql"))) return join(dir, "migrations");
    dir = dirname(dir);
  }
  throw new RosterError("INTERNAL", "cannot find roster's migrations/ folder next to the package");
}

const MIGRATION_FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface MigrationFile {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function readMigrations(dir: string): MigrationFile[] {
  const files = readdirSync(dir)
    .filter((file) => file.endsWith(".sql"))
    .sort();
  const out: MigrationFile[] = [];
  for (const file of files) {
    const match = MIGRATION_FILE.exec(file);
    if (match === null) throw new RosterError("INTERNAL", `migrations/${file}: name must be NNNN_name.sql`);
    const sql = readFileSync(join(dir, file), "utf8");
    const version = Number(match[1]);
    if (out.length > 0 && out[out.length - 1]!.version === version) {
      throw new RosterError("INTERNAL", `migrations/${file}: version ${version} is used twice`);
    }
    out.push({ version, name: file, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  return out;
}

