import type { ErrorObject } from "../errors.js";
import type { FailParams } from "./types.js";

const ERROR_MESSAGE_MAX = 16 * 1024;

/**
 * Normalises an error for storage: bounded, plain, JSON. No `stack`: it names roster's own
 * frames, not what the task did; the code, message and details say that (docs/ARCHITECTURE.md).
 */
export function storedError(error: FailParams["error"], retryable: boolean): ErrorObject {
  const e = error as Partial<ErrorObject> & { message: string };
  return {
    name: typeof e.name === "string" ? e.name : "Error",
    code: typeof e.code === "string" ? e.code : "ADAPTER_FAILED",
    message: String(e.message ?? "").slice(0, ERROR_MESSAGE_MAX),
    retryable,
    ...(e.details !== undefined ? { details: e.details } : {}),
  };
}
