/** What every measured queue (roster, its baselines and the peers) reports for one run. */
export interface QueueRunOptions {
  /** No-op jobs to enqueue, then process. */
  jobs: number;
  /** Jobs in flight at once, where the system's API has such a setting. */
  concurrency: number;
  /** A fresh directory for this run's files. */
  dir: string;
}

export interface QueueRun {
  system: string;
  jobs: number;
  /** Time to enqueue all jobs, ms. */
  enqueueMs: number;
  /** From the start of processing until the last job is recorded done, ms. */
  processMs: number;
  /** jobs / processMs, per second. */
  jobsPerSec: number;
  enqueuePerSec: number;
  peakRssMb: number;
  /** Settings that matter for reading the figure (concurrency used, batching, versions). */
  settings: Record<string, unknown>;
}

export function queueRun(system: string, jobs: number, enqueueMs: number, processMs: number, peakRssMb: number, settings: Record<string, unknown>): QueueRun {
  return {
    system,
    jobs,
    enqueueMs,
    processMs,
    jobsPerSec: (jobs / processMs) * 1000,
    enqueuePerSec: (jobs / enqueueMs) * 1000,
    peakRssMb,
    settings,
  };
}
