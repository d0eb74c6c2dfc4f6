import type { Server } from "node:http";
import type { Config } from "../config.js";
import type { Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";
import { HEALTH_STALE_AFTER_MS_DEFAULT, createLoopHealth } from "./health.js";
import { createMetrics, createTransactionRecorder, type RosterMetrics, type SupervisorSource } from "./metrics.js";
import { startMetricsServer, type MetricsServer } from "./server.js";

/** /healthz calls the loop stalled after this many poll intervals without a tick (or HEALTH_STALE_AFTER_MS_DEFAULT, whichever is longer). */
export const HEALTH_STALE_POLL_INTERVALS = 20;

export interface MetricsService {
  /** For openStore's `onTransaction`: the transaction-duration histogram. */
  onTransaction: (name: string, durationMs: number) => void;
  /**
   * Call as soon as the store is open, before the supervisor starts, so the
   * counters see the first claims and settlements (events are not replayed).
   */
  onStoreOpen: (store: Store) => void;
  /** A runStart extension: attaches the supervisor and serves /metrics and /healthz; stop() closes the server. */
  extension: (ctx: { store: Store; supervisor: SupervisorSource }) => Promise<{ stop(): Promise<void> }>;
  /** The metrics, once the store is open. */
  readonly metrics: RosterMetrics | null;
}

/**
 * Metrics for `roster start`, in the three steps the process goes through:
 * store opened (hook transactions, subscribe to store events), supervisor
 * running (attach its events and stats, listen on config.metrics.host:port),
 * stopping (close the server, unsubscribe).
 */
export function createMetricsService(config: Pick<Config, "metrics" | "pollIntervalMs">, options: { logger: Logger; listening?: Server }): MetricsService {
  const { logger } = options;
  const recorder = createTransactionRecorder();
  let metrics: RosterMetrics | null = null;
  const ensure = (store: Store): RosterMetrics => {
    if (metrics === null) {
      metrics = createMetrics({ store });
      recorder.bind(metrics);
    }
    return metrics;
  };
  return {
    onTransaction: recorder.onTransaction,
    onStoreOpen: (store) => void ensure(store),
    get metrics() {
      return metrics;
    },
    async extension(ctx) {
      const m = ensure(ctx.store);
      m.attachSupervisor(ctx.supervisor);
      let server: MetricsServer;
      try {
        server = await startMetricsServer({
          metrics: m,
          host: config.metrics.host,
          port: config.metrics.port,
          ...(options.listening === undefined ? {} : { listening: options.listening }),
          health: createLoopHealth({
            lastTickAt: () => ctx.supervisor.stats().lastTickAt,
            staleAfterMs: Math.max(HEALTH_STALE_AFTER_MS_DEFAULT, HEALTH_STALE_POLL_INTERVALS * config.pollIntervalMs),
          }),
          onError: (error) => logger.warn({ err: error }, "metrics scrape failed"),
        });
      } catch (error) {
        m.detach();
        throw error;
      }
      logger.info({ url: `${server.url}/metrics`, healthz: `${server.url}/healthz` }, "serving metrics");
      return {
        stop: async () => {
          await server.close();
          m.detach();
        },
      };
    },
  };
}
