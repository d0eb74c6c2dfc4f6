/** Prometheus metrics and the /metrics + /healthz server. */
export {
  createMetrics,
  createTransactionRecorder,
  TASK_DURATION_BUCKETS_SECONDS,
  DB_TRANSACTION_BUCKETS_SECONDS,
  type CreateMetricsOptions,
  type RosterMetrics,
  type SupervisorSource,
} from "./metrics.js";
export { createLoopHealth, HEALTH_STALE_AFTER_MS_DEFAULT, type HealthCheck, type HealthReport, type LoopHealthOptions } from "./health.js";
export { startMetricsServer, type MetricsServer, type MetricsServerOptions } from "./server.js";
export { createMetricsService, HEALTH_STALE_POLL_INTERVALS, type MetricsService } from "./service.js";
