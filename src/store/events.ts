import { TypedEventBus } from "../events.js";

/**
 * In-process notifications the store emits after a transaction commits. The
 * supervisor wakes up on them; metrics and logs subscribe to them. Types are
 * "noun:verb". They describe what the database now holds, so a listener never
 * sees a change that was rolled back.
 */
export interface StoreEventMap {
  "task:enqueued": { ids: number[]; personas: string[]; ready: number };
  "task:claimed": { tasks: Array<{ id: number; persona: string; attempt: number; readyAt: number; claimedAt: number }>; agentId: string };
  "task:started": { taskId: number };
  "task:progress": { taskId: number; fraction: number; message: string | null };
  "task:completed": { taskId: number; persona: string; attempt: number; readied: number; children: number };
  "task:retrying": { taskId: number; persona: string; attempt: number; runAt: number };
  "task:failed": { taskId: number; persona: string; attempt: number; blocked: number };
  "task:released": { taskId: number; persona: string };
  "task:cancelled": { taskIds: number[]; persona: string };
  "task:retried": { taskId: number; persona: string };
  /** Tasks that became ready (a dependency completed, a person approved or answered), and their personas. */
  "task:ready": { ids: number[]; personas: string[] };
  /** A gate of the claim lifted (a budget raised, a breaker reset, a provider resumed, a settle freed room a claim found used up): these personas' pending tasks may be claimable again (null: any persona's). */
  "claim:reopened": { personas: string[] | null; reason: "budget" | "breaker" | "provider" | "room" };
  "lease:expired": { taskId: number; leaseToken: string; persona: string; attempt: number; outcome: "retrying" | "failed" };
  "lease:lost": { taskId: number; op: string };
  "agent:registered": { agentId: string };
  "agent:expired": { agentIds: string[] };
  "agent:deregistered": { agentId: string; released: number };
  "db:busy-retry": { attempt: number };
  /** Economics (issue 16): an attempt's usage was recorded with its outcome. */
  "usage:recorded": { taskId: number; persona: string; provider: string; model: string | null; tokens: Record<"input" | "output" | "cacheRead" | "cacheWrite" | "reasoning", number>; costUsd: number | null };
  "budget:exhausted": { scope: "task" | "goal"; key: string };
  /** A claim of this persona took nothing because of these gates (economics); `until` is when the earliest timed one opens. */
  "claim:gated": { persona: string; codes: string[]; until: number | null };
  "provider:paused": { provider: string; until: number | null; reason: string };
  "provider:resumed": { provider: string };
  "breaker:opened": { persona: string; until: number; failures: number; taskId: number };
  "breaker:probing": { persona: string; taskId: number };
  "breaker:closed": { persona: string };
  /** The file watch behind watchExternalChanges() is not available; other processes' writes are seen by polling only. */
  "store:watch-unavailable": { reason: string };
}

export type StoreEventName = keyof StoreEventMap;

/** A task that became ready, as the dependency writes return it. */
export interface Readied {
  id: number;
  persona: string;
}

/** The task:ready payload for these readied tasks. */
export function readyEvent(ready: readonly Readied[]): StoreEventMap["task:ready"] {
  return { ids: ready.map((r) => r.id), personas: [...new Set(ready.map((r) => r.persona))] };
}

/** The store's events on the one typed bus (src/events.ts). */
export class StoreEventBus extends TypedEventBus<StoreEventMap> {}
