import { randomFillSync } from "node:crypto";

/** Random bytes per lease token prefix (96 bits, 16 base64url characters). */
const TOKEN_BYTES = 12;
/** Prefixes per refill of the pool. */
const POOL_TOKENS = 256;

const pool = Buffer.alloc(TOKEN_BYTES * POOL_TOKENS);
let next = POOL_TOKENS;

/**
 * A fresh random lease token prefix per claim statement, for every engine; the task id
 * appended to it makes a row's token unique (docs/ARCHITECTURE.md rule 4: the token fences
 * every write of the lease). The bytes come from the CSPRNG as before, drawn 256 prefixes
 * at a time: a call of randomBytes(12) for each claim cost more user-space instructions than
 * the claim's own UPDATE statement minus its triggers (cachegrind, issue 14).
 */
export function newLeaseToken(): string {
  if (next === POOL_TOKENS) {
    randomFillSync(pool);
    next = 0;
  }
  const start = next * TOKEN_BYTES;
  next++;
  return pool.toString("base64url", start, start + TOKEN_BYTES);
}
