/** Structured logs (pino), with secrets kept out. */
export { createLogger, silentLogger, taskLogger, parseLogLevel, logLevelOption, LOG_LEVEL_DEFAULT, type Logger, type LoggerOptions, type LogLevel, type LineSink } from "./logger.js";
export { REDACTED, SECRET_MIN_LENGTH, SecretValues, isSecretKey, personaSecretValues, redactSecrets } from "./redact.js";
export { logEvents } from "./events.js";
