import { logEvents } from "../logging/events.js";
import { createLogger, type LineSink, type Logger } from "../logging/logger.js";
import { SecretValues } from "../logging/redact.js";
import type { Store } from "../store/index.js";
import type { SupervisorEventBus } from "../supervisor/events.js";
import { LiveStatus, type TerminalLike } from "./live.js";

export interface StartConsoleOptions {
  /** Log level (config.logLevel: --log-level, ROSTER_LOG_LEVEL, default info). */
  level: string;
  /** Default process.stderr. */
  stderr?: TerminalLike & { isTTY?: boolean };
  /** Default: stderr is a terminal. */
  terminal?: boolean;
  /** Secrets to scrub from every line; add persona env values once personas are loaded. */
  secrets?: SecretValues;
  /** Live view refresh, in ms (defaults in live.ts). */
  intervalMs?: number;
}

export interface StartConsole {
  readonly logger: Logger;
  readonly secrets: SecretValues;
  /** True when stderr is a terminal: pretty log lines and a live status block. */
  readonly terminal: boolean;
  /**
   * Starts the live status (terminal) or the periodic status log line
   * (otherwise), and the per-task log lines fed by the store's and the
   * supervisor's events.
   */
  startLive(store: Store, supervisor?: { events: SupervisorEventBus }): LiveStatus;
  /** Final summary, then stop. Safe to call when never started. */
  stopLive(): Promise<void>;
}

/**
 * What `roster start` writes to stderr: the logger (pretty in a terminal, JSON
 * lines otherwise) and the live status. In a terminal the live view is the
 * logger's destination, so log lines scroll above the status block; elsewhere
 * the status is one plain log line whenever it changed.
 */
export function createStartConsole(options: StartConsoleOptions): StartConsole {
  const stderr = options.stderr ?? process.stderr;
  const terminal = options.terminal ?? stderr.isTTY === true;
  const secrets = options.secrets ?? new SecretValues();
  let live: LiveStatus | null = null;
  let stopLogging: (() => void) | null = null;
  // Lines go straight to stderr until the live view exists, then through it.
  const sink: LineSink = { write: (line: string) => (live !== null ? live.write(line) : stderr.write(line)) };
  const logger = createLogger({ level: options.level, pretty: terminal, destination: terminal ? sink : undefined, secrets });
  return {
    logger,
    secrets,
    terminal,
    startLive(store, supervisor) {
      if (live !== null) return live;
      stopLogging = logEvents({ logger, store, ...(supervisor === undefined ? {} : { supervisor }) });
      const view = new LiveStatus({
        store,
        mode: terminal ? "terminal" : "lines",
        out: stderr,
        logger,
        ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
        onError: (error) => logger.debug({ err: error }, "status refresh failed"),
      });
      live = view;
      view.start();
      return view;
    },
    async stopLive() {
      stopLogging?.();
      stopLogging = null;
      if (live === null) return;
      const view = live;
      await view.stop();
      live = null;
    },
  };
}
