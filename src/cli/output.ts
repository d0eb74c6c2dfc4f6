import { ERRORS, RosterError, coerceError } from "../errors.js";

export function exitCodeFor(error: unknown): number {
  return error instanceof RosterError ? ERRORS[error.code].exit : 1;
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
