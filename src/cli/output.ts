import { RosterError, coerceError, type ErrorCode } from "../errors.js";

/**
 * The exit code of each error code: 2 when the input was wrong (a flag, a plan
 * file, a persona file, a --db path that cannot hold a database, a task id that
 * does not exist), 1 when something failed that the input did not cause (the
 * database is busy, full, read-only, of another program or a newer roster; an
 * adapter failed). One entry per code, so a new code cannot be left out.
 */
const EXIT_CODES: Readonly<Record<ErrorCode, 1 | 2>> = {
  VALIDATION: 2,
  PERSONA_NOT_FOUND: 2,
  PERSONA_INVALID: 2,
  TASK_NOT_FOUND: 2,
  DEPENDENCY_NOT_FOUND: 2,
  DEPENDENCY_CYCLE: 2,
  SELF_DEPENDENCY: 2,
  DUPLICATE_REF: 2,
  PAYLOAD_TOO_LARGE: 2,
  INVALID_STATE: 2,
  CONFIG_INVALID: 2,
  AGENT_NOT_FOUND: 2,
  DATABASE_PATH_INVALID: 2,
  LEASE_LOST: 1,
  LEASE_EXPIRED: 1,
  MIGRATION_CHANGED: 1,
  DATABASE_TOO_NEW: 1,
  DATABASE_INVALID: 1,
  DATABASE_BUSY: 1,
  DATABASE_READONLY: 1,
  DISK_FULL: 1,
  DATABASE_IO: 1,
  ADAPTER_NOT_FOUND: 1,
  ADAPTER_FAILED: 1,
  ADAPTER_OUTPUT_INVALID: 1,
  TIMEOUT: 1,
  ABORTED: 1,
  WORKER_CRASHED: 1,
  SHUTDOWN: 1,
  NOT_SUPPORTED: 1,
  INTERNAL: 1,
};

export function exitCodeFor(error: unknown): number {
  return error instanceof RosterError ? EXIT_CODES[error.code] : 1;
}

/**
 * One clear line on stderr: `roster: CODE: message`. An error that reached here
 * without a roster code is a bug (the store and the commands map what they
 * know), so it is labelled INTERNAL rather than printed bare.
 */
export function printError(error: unknown): void {
  const e = coerceError(error);
  const code = e instanceof RosterError ? e.code : "INTERNAL";
  process.stderr.write(`roster: ${code}: ${e.message}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
