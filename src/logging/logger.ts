import { pino, type Logger } from "pino";

export type { Logger };

/**
 * pino JSON lines on stderr. Child loggers carry task id, persona, attempt and
 * agent id: `logger.child({ taskId, persona, attempt, agentId })`.
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({ name: options.name ?? "roster", level: options.level ?? "info" }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that writes nothing; for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
