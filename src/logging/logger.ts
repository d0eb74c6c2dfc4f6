import { Option } from "commander";
import { pino, type Logger } from "pino";
import { prettyFactory } from "pino-pretty";
import { LOG_LEVELS } from "../config.js";
import { RosterError } from "../errors.js";
import { SecretValues, redactSecrets } from "./redact.js";

export type { Logger };
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_LEVEL_DEFAULT: LogLevel = "info";

/** Anything lines can be written to: a stream, or the live status view (which prints them above itself). */
export interface LineSink {
  write(line: string): unknown;
}

export interface LoggerOptions {
  /** One of LOG_LEVELS; default "info". From `--log-level` / ROSTER_LOG_LEVEL through config. */
  level?: string;
  name?: string;
  /** Human-readable lines (pino-pretty) instead of JSON. Default: stderr is a terminal. */
  pretty?: boolean;
  /** Colours in pretty output; default the same as `pretty`. */
  colorize?: boolean;
  /** Where lines go; default stderr. */
  destination?: LineSink;
  /** Secret values to scrub from every line; shared, so values added later apply too. */
  secrets?: SecretValues;
}

/** Log fields that hold epoch ms; a pretty line shows them as local clock times. */
export const EPOCH_MS_FIELDS = ["runAt", "at", "leaseExpiresAt", "claimedAt", "startedAt", "finishedAt", "lastHeartbeatAt", "before", "nextDueAt"];

/** `19:41:33.123` local, with the date too when it is not today. */
export function localClock(epochMs: number, now = Date.now()): string {
  const d = new Date(epochMs);
  const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return d.toDateString() === new Date(now).toDateString() ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/**
 * pino JSON lines on stderr (readable pino-pretty lines when stderr is a
 * terminal). Child loggers carry task id, persona, attempt and agent id: see
 * `taskLogger`. Secrets are redacted by key and scrubbed by value (redact.ts)
 * before anything reaches the destination.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = parseLogLevel(options.level ?? LOG_LEVEL_DEFAULT, "log level");
  const secrets = options.secrets ?? new SecretValues();
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const target: LineSink = options.destination ?? (pretty ? process.stderr : pino.destination({ fd: 2, sync: false }));
  const prettify = pretty
    ? prettyFactory({
        colorize: options.colorize ?? pretty,
        translateTime: "SYS:HH:MM:ss.l",
        ignore: "pid,hostname",
        singleLine: true,
        // People read local times, not epoch ms; the JSON lines keep the numbers.
        customPrettifiers: Object.fromEntries(EPOCH_MS_FIELDS.map((key) => [key, (value: unknown) => (typeof value === "number" ? localClock(value) : String(value))])),
      })
    : null;
  const sink: LineSink = {
    write(line: string) {
      const clean = secrets.scrub(line);
      return target.write(prettify === null ? clean : prettify(clean));
    },
  };
  return pino(
    {
      name: options.name ?? "roster",
      level,
      formatters: {
        bindings: (bindings) => redactSecrets(bindings),
        log: (object) => redactSecrets(object),
      },
    },
    sink,
  );
}

/** A logger that writes nothing; for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** The child logger for one task attempt: every line carries these fields. */
export function taskLogger(
  logger: Logger,
  fields: { taskId: number; persona: string; attempt?: number; agentId?: string | null },
): Logger {
  const bindings: Record<string, unknown> = { taskId: fields.taskId, persona: fields.persona };
  if (fields.attempt !== undefined) bindings.attempt = fields.attempt;
  if (fields.agentId !== undefined && fields.agentId !== null) bindings.agentId = fields.agentId;
  return logger.child(bindings);
}

/** Checks a level name; the error names where it came from. */
export function parseLogLevel(value: string, where = "--log-level"): LogLevel {
  const level = value.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new RosterError("CONFIG_INVALID", `${where}: must be one of ${LOG_LEVELS.join(", ")}, got "${value}"`);
  }
  return level as LogLevel;
}

/** `--log-level <level>` for any command; unset means ROSTER_LOG_LEVEL, then "info" (resolved by loadConfig). */
export function logLevelOption(): Option {
  return new Option("--log-level <level>", "log level (env ROSTER_LOG_LEVEL; default info)").choices([...LOG_LEVELS]);
}
