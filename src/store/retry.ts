import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { RosterError } from "../errors.js";

/** The database did not answer (a lost connection, a lock held too long): worth trying again. */
export function unreachable(error: unknown): boolean {
  return error instanceof RosterError && (error.code === "DATABASE_IO" || error.code === "DATABASE_BUSY");
}

export interface RetryOptions {
  /** Tries stop once the next wait would end past this many ms from the first try. */
  withinMs: number;
  /** Backoff: the first wait, doubling up to maxMs, in ms. */
  firstMs: number;
  maxMs: number;
  /** Which failures are tried again (default `unreachable`); any other rejects at once. */
  retryable?: (error: unknown) => boolean;
  /** Told of each failure that will be tried again, and the wait before it. */
  onRetry?: (error: unknown, waitMs: number) => void;
  /** Aborted (the process stops): no more tries, nor waits. */
  signal?: AbortSignal;
}

/**
 * A store call tried again with backoff while the database cannot be reached: the end of an MCP
 * session (its last writes) and a long-running command's open (openStoreWaiting). Rejects with
 * the last error when it gives up, or at once for an error retrying cannot help.
 */
export async function retryWhileUnreachable<T>(write: () => Promise<T>, options: RetryOptions): Promise<T> {
  const deadline = performance.now() + options.withinMs;
  const retryable = options.retryable ?? unreachable;
  for (let wait = options.firstMs; ; wait = Math.min(options.maxMs, wait * 2)) {
    try {
      return await write();
    } catch (error) {
      if (!retryable(error) || options.signal?.aborted === true || performance.now() + wait > deadline) throw error;
      options.onRetry?.(error, wait);
    }
    await sleep(wait, undefined, options.signal === undefined ? {} : { signal: options.signal }).catch(() => undefined);
  }
}
