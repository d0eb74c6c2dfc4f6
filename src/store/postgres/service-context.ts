import type { LivenessJudge } from "../liveness.js";
import type { Tx } from "./database.js";
import type { PgTransitions } from "./transitions.js";

/**
 * What the PostgreSQL store's services share (src/store/postgres/store.ts builds it once):
 * a write that tells the liveness judge how long it kept this process from writing, a read,
 * the judge, and the transitions.
 */
export interface PgServiceContext {
  write<T>(name: string, body: (t: Tx) => Promise<T>): Promise<T>;
  read<T>(name: string, body: (q: Pick<Tx, "rows" | "one">) => Promise<T>): Promise<T>;
  judge: LivenessJudge;
  transitions: PgTransitions;
}
