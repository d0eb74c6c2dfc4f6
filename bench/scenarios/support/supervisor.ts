/**
 * The one place the benchmarks construct roster's supervisor (src/supervisor), so its
 * constructor's shape is known to one file. It is built as src/main.ts builds it: a
 * store on the file, the personas folder loaded and synced, the config through
 * loadConfig (defaults, no environment), metrics off and logs silent so that neither
 * costs the measured process anything it would not cost a quiet production run.
 */
import { loadConfig } from "../../../src/config.js";
import { loadPersonaDir, toPersonaUpsert } from "../../../src/personas/load.js";
import { openStore, type Store } from "../../../src/store/index.js";
import { Supervisor } from "../../../src/supervisor/supervisor.js";

export interface BenchSupervisorOptions {
  dbPath: string;
  personasDir: string;
  concurrency: number;
  synchronous?: "NORMAL" | "FULL";
  /** Every write transaction of the supervisor's store (the store's onTransaction hook). */
  onTransaction?: (name: string, durationMs: number) => void;
}

export interface BenchSupervisor {
  /** The supervisor's own store: events and reads. */
  store: Store;
  /** Settings worth printing beside a figure (threads, poll interval). */
  settings: Record<string, unknown>;
  /** Graceful stop; `abort` aborts running tasks at once instead of waiting for them. */
  stop(options?: { abort?: boolean }): Promise<void>;
}

export async function startBenchSupervisor(options: BenchSupervisorOptions): Promise<BenchSupervisor> {
  const synchronous = options.synchronous ?? "NORMAL";
  const config = loadConfig(
    {
      dbPath: options.dbPath,
      personasDir: options.personasDir,
      concurrency: options.concurrency,
      synchronous,
      logLevel: "silent",
      metrics: { enabled: false },
    },
    {},
  );
  const store = await openStore({
    path: options.dbPath,
    synchronous,
    ...(options.onTransaction === undefined ? {} : { onTransaction: options.onTransaction }),
  });
  const personas = loadPersonaDir(options.personasDir);
  await store.personas.sync({ personas: personas.map(toPersonaUpsert), now: Date.now(), sourceDir: options.personasDir });
  let stopGraceMs = config.shutdownGraceMs;
  const supervisor = new Supervisor({ store, personas, config: { ...config, get shutdownGraceMs() { return stopGraceMs; } } });
  await supervisor.start();
  return {
    store,
    settings: { threads: config.threads, pollIntervalMs: config.pollIntervalMs, concurrency: config.concurrency },
    async stop(stopOptions = {}) {
      if (stopOptions.abort === true) stopGraceMs = 0;
      await supervisor.stop("bench");
      await store.close();
    },
  };
}
