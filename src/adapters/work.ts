import { RosterError } from "../errors.js";
import type { Json } from "../store/types.js";
import { setLongTimeout } from "../timers.js";
import type { AdapterContext } from "./types.js";

/** Helpers the built-in adapters share: payload fields and abortable simulated work. */

export function payloadObject(payload: Json | null): Record<string, Json> {
  return payload !== null && typeof payload === "object" && !Array.isArray(payload) ? payload : {};
}

/** A non-negative integer field of the payload, or the fallback; a wrong type is a clear error. */
export function payloadInt(payload: Json | null, field: string, fallback: number): number {
  const value = payloadObject(payload)[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new RosterError("VALIDATION", `payload.${field}: must be a non-negative integer, got ${JSON.stringify(value)}`, {
      retryable: false,
      details: { field: `payload.${field}` },
    });
  }
  return value;
}

export function payloadBool(payload: Json | null, field: string, fallback: boolean): boolean {
  const value = payloadObject(payload)[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "boolean") {
    throw new RosterError("VALIDATION", `payload.${field}: must be true or false, got ${JSON.stringify(value)}`, {
      retryable: false,
      details: { field: `payload.${field}` },
    });
  }
  return value;
}

/** Rejects with the signal's reason (or an ABORTED error) once it has fired. */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortReason(signal);
}

export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new RosterError("ABORTED", "the attempt was aborted");
}

/** Waits `ms` (a payload's, with no upper bound: setLongTimeout), rejecting as soon as the signal fires. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      timer.clear();
      reject(abortReason(signal));
    };
    const timer = setLongTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Simulated work of `ms` in `steps` slices, reporting progress after each; stops on abort. */
export async function simulateWork(ms: number, ctx: AdapterContext, steps = 4, label = "working"): Promise<void> {
  if (ms <= 0) return;
  const slices = Math.max(1, Math.min(steps, ms));
  for (let i = 1; i <= slices; i++) {
    await delay(Math.round(ms / slices), ctx.signal);
    if (i < slices) ctx.progress(i / slices, `${label} ${i}/${slices}`);
  }
}
