/**
 * The dashboard's live change notices over Server-Sent Events (GET /api/events). Store
 * events and other processes' writes become `change` notices, batched: at most one every
 * UI_PUSH_INTERVAL_MS, each naming the kinds of change, the task ids touched (null when
 * over 500) and the latest progress of running tasks. A browser refetches the views a
 * notice concerns; nothing polls tables.
 *
 * Other processes' writes are seen through the same watch the supervisor's waker uses:
 *  - "own" (roster ui): this process owns the store's consume-once hasExternalChanges, so
 *    a watch hint is confirmed with it, plus a slow fallback poll of it (it reports other
 *    processes' writes only, on PostgreSQL as on SQLite: this process's own reach the page
 *    as store events);
 *  - "shared" (roster start --ui-port): the supervisor owns it, so a hint alone becomes an
 *    "external" notice, at most one a second (the watch also fires for the supervisor's
 *    own lease renewals).
 * Nothing is read or queued while no browser is connected.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { Store, StoreEventName } from "../store/index.js";
import { SECURITY_HEADERS } from "./http.js";

/** Change notices to browsers are sent at most this often, in ms. */
export const UI_PUSH_INTERVAL_MS = 200;
/** A comment line to every stream this often, in ms, so proxies keep it open. */
const KEEP_ALIVE_MS = 15_000;
/** Above this many touched tasks a notice says `tasks: null` (refetch everything shown). */
const MAX_TASK_IDS = 500;

/** Store events that change what a page shows; each becomes part of the next change notice. */
const WATCHED: StoreEventName[] = [
  "task:enqueued",
  "task:claimed",
  "task:started",
  "task:completed",
  "task:retrying",
  "task:failed",
  "task:released",
  "task:cancelled",
  "task:retried",
  "task:ready",
  "claim:reopened",
  "lease:expired",
  "agent:registered",
  "agent:expired",
  "agent:deregistered",
  "usage:recorded",
  "budget:exhausted",
  "provider:paused",
  "provider:resumed",
  "breaker:opened",
  "breaker:probing",
  "breaker:closed",
];

export interface ChangeFeedOptions {
  store: Store;
  mode: "own" | "shared";
  /** Fallback poll of hasExternalChanges in "own" mode, in ms. */
  externalPollMs: number;
  clock: Clock;
  logger?: Logger | undefined;
}

export class ChangeFeed {
  private readonly clients = new Set<ServerResponse>();
  private pendingKinds = new Set<string>();
  private pendingTasks = new Set<number>();
  private pendingProgress = new Map<number, { fraction: number; message: string | null }>();
  private flushTimer: NodeJS.Timeout | null = null;
  private lastFlush = 0;
  private checking = false;
  private hinted: NodeJS.Timeout | null = null;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly poll: NodeJS.Timeout | null;
  private readonly keepAlive: NodeJS.Timeout;

  constructor(private readonly options: ChangeFeedOptions) {
    const { store } = options;
    for (const name of WATCHED) {
      this.unsubscribe.push(
        store.events.on(name, (payload: unknown) => {
          const p = payload as { taskId?: number; ids?: number[]; taskIds?: number[]; tasks?: Array<{ id: number }> };
          const ids = [...(p.ids ?? []), ...(p.taskIds ?? []), ...(p.tasks ?? []).map((t) => t.id), ...(p.taskId !== undefined ? [p.taskId] : [])];
          this.note(name, ids);
        }),
      );
    }
    this.unsubscribe.push(
      store.events.on("task:progress", (p) => {
        if (this.clients.size === 0) return;
        this.pendingProgress.set(p.taskId, { fraction: p.fraction, message: p.message });
        this.schedule();
      }),
    );
    this.unsubscribe.push(store.watchExternalChanges(() => void this.checkExternal()));
    this.poll = options.mode === "own" ? setInterval(() => void this.checkExternal(), options.externalPollMs) : null;
    this.poll?.unref();
    this.keepAlive = setInterval(() => {
      for (const res of this.clients) res.write(`: keep-alive\n\n`);
    }, KEEP_ALIVE_MS);
    this.keepAlive.unref();
  }

  /** Answers GET /api/events: a `hello`, then `change` notices until the browser goes. */
  open(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive" });
    res.write(`retry: 2000\nevent: hello\ndata: {"at":${this.options.clock.now()}}\n\n`);
    this.clients.add(res);
    req.once("close", () => this.clients.delete(res));
  }

  /** Stops listening and ends every stream. */
  close(): void {
    for (const stop of this.unsubscribe) stop();
    if (this.poll !== null) clearInterval(this.poll);
    clearInterval(this.keepAlive);
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    if (this.hinted !== null) clearTimeout(this.hinted);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private flush(): void {
    this.flushTimer = null;
    this.lastFlush = Date.now();
    if (this.pendingKinds.size === 0 && this.pendingProgress.size === 0) return;
    const data = JSON.stringify({
      kinds: [...this.pendingKinds],
      tasks: this.pendingTasks.size > MAX_TASK_IDS ? null : [...this.pendingTasks],
      progress: [...this.pendingProgress].map(([id, p]) => ({ id, ...p })),
    });
    this.pendingKinds = new Set();
    this.pendingTasks = new Set();
    this.pendingProgress = new Map();
    for (const res of this.clients) res.write(`event: change\ndata: ${data}\n\n`);
  }

  private schedule(): void {
    if (this.flushTimer !== null || this.clients.size === 0) return;
    this.flushTimer = setTimeout(() => this.flush(), Math.max(0, UI_PUSH_INTERVAL_MS - (Date.now() - this.lastFlush)));
  }

  private note(kind: string, ids: number[] = []): void {
    if (this.clients.size === 0) return;
    this.pendingKinds.add(kind);
    for (const id of ids) this.pendingTasks.add(id);
    this.schedule();
  }

  private async checkExternal(): Promise<void> {
    if (this.checking || this.clients.size === 0) return;
    if (this.options.mode === "shared") {
      // The watch fires for the supervisor's own writes too (lease renewals every few
      // seconds), and it cannot be confirmed here: one notice a second at most.
      this.hinted ??= setTimeout(() => {
        this.hinted = null;
        this.note("external");
      }, 1_000);
      return;
    }
    this.checking = true;
    try {
      if (await this.options.store.hasExternalChanges()) this.note("external");
    } catch (error) {
      this.options.logger?.debug({ err: coerceError(error) }, "external change check failed");
    } finally {
      this.checking = false;
    }
  }
}
