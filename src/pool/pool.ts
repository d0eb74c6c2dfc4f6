import { randomUUID } from "node:crypto";
import { BroadcastChannel } from "node:worker_threads";
import { Piscina } from "piscina";
import { isBatchable } from "../adapters/registry.js";
import { warmUp, type Warming } from "./warm-up.js";
import { RosterError, coerceError, toErrorObject, type ErrorObject } from "../errors.js";
import {
  CONTROL_ABORT,
  isAbortSeenReport,
  isOutcomeReport,
  isWorkerReport,
  type ControlMessage,
  type RunBatchRequest,
  type RunBatchResponse,
  type WarmUpRequest,
  type WarmUpResponse,
  type WorkerInit,
  type WorkerTask,
} from "./protocol.js";
import {
  ABORT_GRACE_MS_DEFAULT,
  ABORT_GRACES_ANSWERING_MAX,
  ABORT_RESEND_MS,
  ABORT_SILENCE_MAX_MS,
  BATCH_SIZE_DEFAULT,
  THREADS_READY_WAIT_MS,
  WORKER_PROGRESS_INTERVAL_MS_DEFAULT,
  workerFilename,
  type Batch,
  type Entry,
  type PoolOutcome,
  type PoolRun,
  type WorkerPoolOptions,
} from "./pool-types.js";

/**
 * The worker pool: a piscina wrapper (threads ≈ CPUs, many concurrent tasks per
 * thread, strict FIFO under saturation).
 *
 * Modes: created → started (serving runTasks) → closed. Tasks travel several to
 * a message, which amortises the per-task hop; those whose adapter does not settle
 * at once (registry: not batchable) have their outcomes sent back one by one as
 * they settle, so no task waits on another. `abort(taskId, reason)` asks the
 * adapter to stop (ctx.signal, via the control channel); if it has not settled after abortGraceMs, its thread is
 * terminated (found through threadSlots) and piscina replaces it (a thread that keeps answering the abort gets longer:
 * ABORT_SILENCE_MAX_MS, ABORT_GRACES_ANSWERING_MAX); the task's
 * outcome is the abort reason, and the other tasks that shared the thread come
 * back `released`. A thread that dies on its own fails its tasks with
 * WORKER_CRASHED (a counted attempt).
 */
export class WorkerPool {
  private readonly options: Required<Omit<WorkerPoolOptions, "onReport" | "onError" | "heapLimitMb">> & Pick<WorkerPoolOptions, "onReport" | "onError" | "heapLimitMb">;
  private readonly init: WorkerInit;
  /** Unsettled attempts by run id: two attempts of one task (an aborted one still stopping, its retry) may both be here. */
  private readonly entries = new Map<number, Entry>();
  /** Batches with an unsettled task, by batch id (outcome reports name the batch). */
  private readonly batches = new Map<number, Batch>();
  private piscina: Piscina<RunBatchRequest | WarmUpRequest, RunBatchResponse | WarmUpResponse> | null = null;
  private control: BroadcastChannel | null = null;
  private readonly threadSlots: Int32Array;
  private readonly freeSlots: number[];
  /** Threads this pool terminated on purpose; tasks failing with them are collateral. */
  private readonly terminated = new Set<number>();
  private closed = false;
  private nextBatchId = 1;
  /** Persona definitions as last set (setPersonas); sent with each batch once they differ from workerData's. */
  private personaDefs: Map<string, WorkerInit["personas"][number]> | null = null;
  private nextRunId = 1;
  /** Threads that answered their warm-up (WarmUpRequest): up, their adapters loaded. */
  private readonly readyThreads = new Set<number>();
  /** ready()'s wait, made once per start; ended early by close. */
  private warming: Warming | null = null;

  constructor(options: WorkerPoolOptions) {
    const positive = (name: string, value: number) => {
      if (!Number.isInteger(value) || value < 1) throw new RosterError("CONFIG_INVALID", `pool.${name}: must be a positive integer, got ${value}`);
    };
    positive("threads", options.threads);
    positive("concurrency", options.concurrency);
    const abortGraceMs = options.abortGraceMs ?? ABORT_GRACE_MS_DEFAULT;
    if (!Number.isInteger(abortGraceMs) || abortGraceMs < 0) throw new RosterError("CONFIG_INVALID", `pool.abortGraceMs: must be an integer >= 0, got ${abortGraceMs}`);
    const batchSize = options.batchSize ?? BATCH_SIZE_DEFAULT;
    positive("batchSize", batchSize);
    if (options.heapLimitMb !== undefined) positive("heapLimitMb", options.heapLimitMb);
    this.options = { ...options, abortGraceMs, batchSize };
    // A batch holds its slot only while one of its tasks is unsettled, so `concurrency` slots always suffice.
    const sab = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * options.concurrency);
    this.threadSlots = new Int32Array(sab);
    this.freeSlots = Array.from({ length: options.concurrency }, (_, i) => options.concurrency - 1 - i);
    this.init = {
      ...options.init,
      progressIntervalMs: options.init.progressIntervalMs ?? WORKER_PROGRESS_INTERVAL_MS_DEFAULT,
      controlChannel: `roster-pool-${randomUUID()}`,
      threadSlots: sab,
    };
  }

  start(): void {
    if (this.piscina !== null) return;
    if (this.closed) throw new RosterError("INVALID_STATE", "the worker pool is closed");
    this.control = new BroadcastChannel(this.init.controlChannel);
    this.control.unref();
    const piscina = new Piscina<RunBatchRequest | WarmUpRequest, RunBatchResponse | WarmUpResponse>({
      filename: workerFilename(),
      minThreads: this.options.threads,
      maxThreads: this.options.threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Concurrency is limited by the supervisor, so piscina never needs to queue.
      // Runs carry no piscina abort signal: piscina gives an abortable task a thread
      // of its own, which would cap concurrency at the thread count. Termination is
      // done here instead (threadSlots → worker.terminate()).
      concurrentTasksPerWorker: this.options.concurrency,
      stricterFIFO: true,
      // piscina's least-busy choice, minus the threads this pool is terminating: until piscina
      // sees such a thread exit it would still hand it messages, whose tasks then die with it
      // although they never ran (docs/ARCHITECTURE.md, rule 12).
      loadBalancer: (_task, workers) => {
        let best: (typeof workers)[number] | null = null;
        for (const worker of workers) {
          if (this.terminated.has(worker.id) || worker.terminating || worker.destroyed) continue;
          if (worker.currentUsage === 0) return worker;
          if (worker.currentUsage < this.options.concurrency && (best === null || worker.currentUsage < best.currentUsage)) best = worker;
        }
        return best;
      },
      workerData: this.init,
      // A thread past its heap limit is ended by Node (ERR_WORKER_OUT_OF_MEMORY); its tasks fail with WORKER_CRASHED.
      ...(this.options.heapLimitMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: this.options.heapLimitMb } }),
    });
    piscina.on("message", (message: unknown) => {
      if (isOutcomeReport(message)) {
        for (const { batchId, outcome } of message.outcomes) {
          const batch = this.batches.get(batchId);
          if (batch !== undefined) this.take(runIdOf(batch, outcome.taskId), batch)?.resolve(outcome);
        }
      } else if (isAbortSeenReport(message)) {
        const now = performance.now();
        for (const runId of message.runIds) {
          const entry = this.entries.get(runId);
          if (entry !== undefined) entry.answeredAt = now;
        }
      } else if (isWorkerReport(message)) this.options.onReport?.(message);
    });
    piscina.on("error", (error: unknown) => this.options.onError?.(coerceError(error)));
    this.piscina = piscina;
  }

  get threads(): number {
    return this.piscina?.threads.length ?? 0;
  }

  /** Live threads that answered their warm-up: up, their personas' adapters loaded. */
  get threadsUp(): number {
    return this.piscina?.threads.filter((t) => this.readyThreads.has(t.threadId)).length ?? 0;
  }

  /**
   * Resolves once every thread is up and has loaded its personas' adapters (a WarmUpRequest to
   * each), or after waitMs, or when the pool closes: the supervisor claims nothing before, so no
   * lease runs while its task waits for a thread to boot (about 40 ms here) or a module to load,
   * and no task of the first claim is written started only because its thread was not up yet
   * (the start fold, src/supervisor/start-writes.ts). Never rejects: a thread that cannot start
   * is piscina's to replace, as at any time, and a persona whose adapter does not load fails its
   * tasks as it would without this wait.
   */
  ready(waitMs = THREADS_READY_WAIT_MS): Promise<void> {
    const piscina = this.piscina;
    if (piscina === null) return Promise.reject(new RosterError("INVALID_STATE", "the worker pool is not running"));
    this.warming ??= warmUp((request) => piscina.run(request) as Promise<WarmUpResponse>, this.options.threads, waitMs, (threadId) => this.readyThreads.add(threadId));
    return this.warming.done;
  }

  /** Tasks handed to the pool and not settled yet. */
  get running(): number {
    return this.entries.size;
  }

  /**
   * Sends the tasks to the threads, several to a message. Tasks whose adapter
   * settles at once (batchable) come back with their batch's response; the others
   * are sent with reportEach, so each outcome comes back as soon as its task
   * settles and no task waits on the slower ones it travelled with.
   */
  runTasks(tasks: WorkerTask[], kindOf: (task: WorkerTask) => string): PoolRun[] {
    const piscina = this.piscina;
    if (piscina === null || this.closed) throw new RosterError("INVALID_STATE", "the worker pool is not running");
    const runs: PoolRun[] = [];
    const single: WorkerTask[] = [];
    const grouped: WorkerTask[] = [];
    for (const task of tasks) (isBatchable(kindOf(task), task.payload) ? grouped : single).push(task);
    const send = (batchTasks: WorkerTask[], reportEach: boolean) => {
      const slot = this.freeSlots.pop();
      if (slot === undefined) throw new RosterError("INTERNAL", `more than ${this.options.concurrency} batches in flight`);
      Atomics.store(this.threadSlots, slot, 0);
      const runIds: number[] = [];
      const batch: Batch = { id: this.nextBatchId++, tasks: batchTasks, runIds, runIdByTask: new Map(), slot, culprit: null, unsettled: batchTasks.length, slotHeld: true };
      this.batches.set(batch.id, batch);
      for (const task of batchTasks) {
        let resolve!: (outcome: PoolOutcome) => void;
        const outcome = new Promise<PoolOutcome>((r) => (resolve = r));
        const runId = this.nextRunId++;
        runIds.push(runId);
        batch.runIdByTask.set(task.id, runId);
        this.entries.set(runId, { runId, taskId: task.id, batch, resolve, abortReason: null, abortedAt: 0, answeredAt: null, stopBoundMs: 0, graceTimer: null, resendTimer: null });
        runs.push({ taskId: task.id, runId, outcome });
      }
      const defs = this.personaDefs;
      const personas = defs === null ? undefined : [...new Set(batchTasks.map((t) => t.persona))].flatMap((id) => defs.get(id) ?? []);
      piscina
        .run({ batchId: batch.id, slot, tasks: batchTasks, runIds, ...(personas === undefined ? {} : { personas }), ...(reportEach && batchTasks.length > 1 ? { reportEach } : {}) })
        .then(
        (response) => this.settleBatch(batch, response as RunBatchResponse),
        (error: unknown) => this.failBatch(batch, error),
      );
    };
    // Tasks that run for a while are spread over the threads, in messages of at most batchSize,
    // each outcome reported as it settles.
    const size = Math.min(this.options.batchSize, Math.max(1, Math.ceil(single.length / this.options.threads)));
    for (let i = 0; i < single.length; i += size) send(single.slice(i, i + size), true);
    // Tasks that settle at once travel together, a dispatch in one message answered once: each
    // message to a sleeping thread costs the main thread a wake-up (Atomics.notify, tens of us
    // here), more than the whole batch's work on the thread, and the balancer takes the threads
    // in turn from one dispatch to the next. Spread in messages of 64, a no-op task cost the main
    // thread about 2 us more (issue 14).
    if (grouped.length > 0) send(grouped, false);
    return runs;
  }

  /**
   * Asks the task's adapter to stop; after abortGraceMs its thread is terminated.
   * The first reason wins. Unknown or settled tasks are ignored.
   */
  abort(runIds: number[], reason: ErrorObject): void {
    const live: number[] = [];
    for (const runId of runIds) {
      const entry = this.entries.get(runId);
      if (entry === undefined || entry.abortReason !== null) continue;
      entry.abortReason = reason;
      entry.abortedAt = performance.now();
      live.push(runId);
      entry.graceTimer = setTimeout(() => this.terminate(runId), this.options.abortGraceMs);
      entry.resendTimer = setInterval(() => this.sendAbort([runId], reason), ABORT_RESEND_MS);
    }
    this.sendAbort(live, reason);
  }

  private sendAbort(runIds: number[], reason: ErrorObject): void {
    if (runIds.length === 0 || this.control === null) return;
    const message: ControlMessage = { type: CONTROL_ABORT, runIds, reason };
    this.control.postMessage(message);
  }

  /**
   * The personas changed while the pool runs (hot reload): from now on each message
   * carries its tasks' persona definitions, and a thread whose copy differs replaces
   * it (and reloads that adapter) before running them.
   */
  setPersonas(personas: WorkerInit["personas"]): void {
    this.personaDefs = new Map(personas.map((p) => [p.id, p]));
  }

  /** Ends the pool. Without `force` it waits for the tasks in flight; with it, threads are terminated at once. */
  async close(options: { force?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const piscina = this.piscina;
    this.piscina = null;
    if (piscina !== null) {
      if (options.force === true) await piscina.destroy();
      else await piscina.close();
    }
    for (const entry of this.entries.values()) this.clearTimers(entry);
    this.warming?.end();
    this.control?.close();
    this.control = null;
  }

  /**
   * The grace is over. A thread that has answered the abort lately (within
   * ABORT_SILENCE_MAX_MS) is stopping the attempt, or starved: it gets another grace, up to
   * its stop bound in all. One that has gone quiet that long (a synchronous spin, a blocked
   * loop), or whose adapter is past the stop bound, is terminated now.
   */
  private terminate(runId: number): void {
    const entry = this.entries.get(runId);
    if (entry === undefined) return;
    entry.graceTimer = null;
    const grace = this.options.abortGraceMs;
    const now = performance.now();
    const elapsed = now - entry.abortedAt;
    const silenceMax = Math.max(grace, ABORT_SILENCE_MAX_MS);
    const stopMax = Math.max(grace * ABORT_GRACES_ANSWERING_MAX, 2 * silenceMax);
    const silent = now - (entry.answeredAt ?? entry.abortedAt) >= silenceMax;
    if (!silent && elapsed < stopMax && this.piscina !== null) {
      entry.graceTimer = setTimeout(() => this.terminate(runId), Math.max(1, Math.min(grace, stopMax - elapsed)));
      return;
    }
    // The bound it was held to, for the culprit's message.
    entry.stopBoundMs = silent ? silenceMax : stopMax;
    const threadId = Atomics.load(this.threadSlots, entry.batch.slot);
    const worker = threadId === 0 ? undefined : this.piscina?.threads.find((w) => w.threadId === threadId);
    if (worker === undefined) {
      // Not received by a thread yet (or the pool is closing): look again shortly.
      if (this.piscina !== null) entry.graceTimer = setTimeout(() => this.terminate(runId), 50);
      return;
    }
    entry.batch.culprit = runId;
    this.terminated.add(threadId);
    // piscina sees the exit, fails every task of that thread (see failBatch) and starts a replacement.
    void worker.terminate();
  }

  /**
   * Removes the task's entry if it belongs to `batch`. A task id alone is not
   * enough: once an outcome reported ahead has settled an attempt, the task may be
   * retried and running again in a newer batch before the old batch's response
   * (or failure) arrives, and that must not settle the new attempt.
   */
  private take(runId: number | undefined, batch: Batch): Entry | undefined {
    const entry = runId === undefined ? undefined : this.entries.get(runId);
    if (entry === undefined || entry.batch !== batch) return undefined;
    this.entries.delete(entry.runId);
    this.clearTimers(entry);
    // Its batch's response may still be on its way; the slot is needed only while a task of it runs.
    if (--entry.batch.unsettled === 0) this.releaseSlot(entry.batch);
    return entry;
  }

  /** Frees the batch's slot; once none of its tasks is unsettled, outcome reports can no longer name it. */
  private releaseSlot(batch: Batch): void {
    if (batch.unsettled <= 0) this.batches.delete(batch.id);
    if (!batch.slotHeld) return;
    batch.slotHeld = false;
    this.freeSlots.push(batch.slot);
  }

  private clearTimers(entry: Entry): void {
    if (entry.graceTimer !== null) clearTimeout(entry.graceTimer);
    if (entry.resendTimer !== null) clearInterval(entry.resendTimer);
    entry.graceTimer = null;
    entry.resendTimer = null;
  }

  private settleBatch(batch: Batch, response: RunBatchResponse): void {
    for (const outcome of response.outcomes) {
      this.take(runIdOf(batch, outcome.taskId), batch)?.resolve(outcome);
    }
    // Defensive: a task the worker did not answer for (a protocol bug) must not hang. (An error
    // is made only then: its stack trace cost about 30 us a batch.)
    if (batch.unsettled > 0) this.failTasks(batch, new RosterError("INTERNAL", "the worker returned no outcome for this task"));
    this.releaseSlot(batch);
  }

  private failBatch(batch: Batch, error: unknown): void {
    this.failTasks(batch, error);
    this.releaseSlot(batch);
  }

  private failTasks(batch: Batch, error: unknown): void {
    const threadId = Atomics.load(this.threadSlots, batch.slot);
    // A message no thread received (threadId still 0) ran nothing: its tasks are not to blame either.
    const collateral = threadId === 0 || this.terminated.has(threadId);
    batch.tasks.forEach((task, i) => {
      const entry = this.take(batch.runIds[i], batch);
      if (entry === undefined) return;
      if (entry.abortReason !== null) {
        const reason =
          batch.culprit === entry.runId
            ? { ...entry.abortReason, message: `${entry.abortReason.message} (the adapter did not stop within ${entry.stopBoundMs} ms; its thread was terminated)` }
            : entry.abortReason;
        entry.resolve({ taskId: task.id, ok: false, error: reason, aborted: true });
      } else if (collateral) {
        entry.resolve({
          taskId: task.id,
          ok: false,
          error: toErrorObject(
            new RosterError(
              "WORKER_CRASHED",
              threadId === 0
                ? `its message never reached a worker thread (${coerceError(error).message}); given back without counting the attempt`
                : "its worker thread was terminated because another task on it did not stop",
            ),
          ),
          aborted: false,
          released: true,
        });
      } else {
        const cause = coerceError(error);
        entry.resolve({
          taskId: task.id,
          ok: false,
          error: toErrorObject(new RosterError("WORKER_CRASHED", `worker thread failed: ${cause.message}`, { cause, retryable: true })),
          aborted: false,
        });
      }
    });
  }
}

/** A batch holds a task once: its run id there. */
function runIdOf(batch: Batch, taskId: number): number | undefined {
  return batch.runIdByTask.get(taskId);
}
