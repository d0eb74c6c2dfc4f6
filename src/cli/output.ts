import { RosterError, coerceError } from "../errors.js";

/** Codes that mean the input was wrong (exit 2) rather than that something failed (exit 1). */
const VALIDATION_CODES = new Set([
  "VALIDATION",
  "PERSONA_NOT_FOUND",
  "PERSONA_INVALID",
  "TASK_NOT_FOUND",
  "DEPENDENCY_NOT_FOUND",
  "DEPENDENCY_CYCLE",
  "SELF_DEPENDENCY",
  "DUPLICATE_REF",
  "PAYLOAD_TOO_LARGE",
  "INVALID_STATE",
  "CONFIG_INVALID",
  "AGENT_NOT_FOUND",
]);

export function exitCodeFor(error: unknown): number {
  return error instanceof RosterError && VALIDATION_CODES.has(error.code) ? 2 : 1;
}

/** One clear line on stderr: `roster: CODE: message`. */
export function printError(error: unknown): void {
  const e = coerceError(error);
  const code = e instanceof RosterError ? `${e.code}: ` : "";
  process.stderr.write(`roster: ${code}${e.message}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
