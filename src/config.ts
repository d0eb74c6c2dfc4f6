import { cpus } from "node:os";
import { z } from "zod";
import { setSystemClockOffset } from "./clock.js";
import { RosterError } from "./errors.js";
import { formatIssues } from "./store/input.js";
import { TIMER_MS_MAX } from "./timers.js";

/**
 * roster's configuration: one zod schema, named defaults, and the only place that
 * reads process.env. CLI flags override environment variables, which override the
 * defaults. Units are in the names.
 */
export const DB_PATH_DEFAULT = "./roster.db";
export const PERSONAS_DIR_DEFAULT = "./personas";
export const METRICS_HOST_DEFAULT = "127.0.0.1";
export const METRICS_PORT_DEFAULT = 9464;
export const MCP_HOST_DEFAULT = "127.0.0.1";
/** Tasks running at once across all personas. */
export const CONCURRENCY_DEFAULT = 256;
/** How often to look for other processes' writes (PRAGMA data_version) and due retries, in ms. */
export const POLL_INTERVAL_MS_DEFAULT = 250;
/** How often the reaper looks for expired leases, in ms. */
export const REAP_INTERVAL_MS_DEFAULT = 5_000;
/** How long running tasks get to finish after SIGINT/SIGTERM, in ms. */
export const SHUTDOWN_GRACE_MS_DEFAULT = 10_000;
/**
 * Old-generation heap limit of each worker thread, in MiB (piscina resourceLimits
 * maxOldGenerationSizeMb). A thread past it is ended by Node alone (its tasks fail
 * with WORKER_CRASHED) instead of swelling the whole process.
 */
export const WORKER_HEAP_LIMIT_MB_DEFAULT = 2_048;
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

export const configSchema = z
  .object({
    /** SQLite database file. */
    dbPath: z.string().min(1).default(DB_PATH_DEFAULT),
    /** Folder of persona files (*.md). */
    personasDir: z.string().min(1).default(PERSONAS_DIR_DEFAULT),
    logLevel: z.enum(LOG_LEVELS).default("info"),
    synchronous: z.enum(["NORMAL", "FULL"]).default("NORMAL"),
    /** How long a write waits for another connection's lock before SQLITE_BUSY, in ms (then retried a few times). */
    busyTimeoutMs: z.number().int().min(0).default(5_000),
    /** Largest payload or result, in bytes of JSON. */
    maxPayloadBytes: z.number().int().min(1).default(1024 * 1024),
    concurrency: z.number().int().min(1).max(100_000).default(CONCURRENCY_DEFAULT),
    /** Worker threads; default the number of CPUs. */
    threads: z.number().int().min(1).max(256).default(Math.max(1, cpus().length)),
    /** Heap limit of each worker thread, in MiB (see WORKER_HEAP_LIMIT_MB_DEFAULT). */
    workerHeapLimitMb: z.number().int().min(16).max(1_048_576).default(WORKER_HEAP_LIMIT_MB_DEFAULT),
    /** Intervals of setInterval timers: at most TIMER_MS_MAX (about 24.8 days), past which Node ticks every 1 ms. */
    pollIntervalMs: z.number().int().min(10).max(TIMER_MS_MAX).default(POLL_INTERVAL_MS_DEFAULT),
    reapIntervalMs: z.number().int().min(10).max(TIMER_MS_MAX).default(REAP_INTERVAL_MS_DEFAULT),
    shutdownGraceMs: z.number().int().min(0).default(SHUTDOWN_GRACE_MS_DEFAULT),
    /**
     * Shifts this process's wall clock by this many ms (a fault to inject: a clock that
     * is off). Default 0. Liveness does not depend on it (docs/ARCHITECTURE.md, rule 14).
     */
    clockOffsetMs: z.number().int().min(-86_400_000).max(86_400_000).default(0),
    /** Allow `module` adapters at absolute paths outside the personas folder. */
    allowAbsoluteModules: z.boolean().default(false),
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default(METRICS_HOST_DEFAULT),
        port: z.number().int().min(0).max(65_535).default(METRICS_PORT_DEFAULT),
      })
      .default({ enabled: true, host: METRICS_HOST_DEFAULT, port: METRICS_PORT_DEFAULT }),
    mcp: z
      .object({
        /** Streamable HTTP port; off when absent. */
        port: z.number().int().min(0).max(65_535).optional(),
        host: z.string().min(1).default(MCP_HOST_DEFAULT),
        /** Bearer token required of HTTP clients when set. */
        token: z.string().min(1).optional(),
        /** Profile served (planner, worker or all; default all): a narrower one refuses the others' endpoints. */
        profile: z.enum(["planner", "worker", "all"]).optional(),
        /** Tokens that open only the worker (or planner) profile (src/mcp/http.ts). */
        workerToken: z.string().min(1).optional(),
        plannerToken: z.string().min(1).optional(),
      })
      .default({ host: MCP_HOST_DEFAULT }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/**
 * Every environment variable roster reads, once: the config field it sets and how
 * its text is parsed. configFromEnv reads them and loadConfig names the variable
 * a bad value came from, both from this table (issue 14: three hand-kept maps had
 * drifted, so `ROSTER_BUSY_TIMEOUT_MS=-1` was reported without the variable).
 */
export const CONFIG_ENV: ReadonlyArray<{ variable: string; path: string; parse: "string" | "int" | "upper" | "bool" }> = [
  { variable: "ROSTER_DB", path: "dbPath", parse: "string" },
  { variable: "ROSTER_PERSONAS", path: "personasDir", parse: "string" },
  { variable: "ROSTER_LOG_LEVEL", path: "logLevel", parse: "string" },
  { variable: "ROSTER_SYNCHRONOUS", path: "synchronous", parse: "upper" },
  { variable: "ROSTER_CONCURRENCY", path: "concurrency", parse: "int" },
  { variable: "ROSTER_THREADS", path: "threads", parse: "int" },
  { variable: "ROSTER_BUSY_TIMEOUT_MS", path: "busyTimeoutMs", parse: "int" },
  { variable: "ROSTER_WORKER_HEAP_LIMIT_MB", path: "workerHeapLimitMb", parse: "int" },
  { variable: "ROSTER_CLOCK_OFFSET_MS", path: "clockOffsetMs", parse: "int" },
  { variable: "ROSTER_MAX_PAYLOAD_BYTES", path: "maxPayloadBytes", parse: "int" },
  { variable: "ROSTER_ALLOW_ABSOLUTE_MODULES", path: "allowAbsoluteModules", parse: "bool" },
  { variable: "ROSTER_MCP_TOKEN", path: "mcp.token", parse: "string" },
  { variable: "ROSTER_MCP_WORKER_TOKEN", path: "mcp.workerToken", parse: "string" },
  { variable: "ROSTER_MCP_PLANNER_TOKEN", path: "mcp.plannerToken", parse: "string" },
];

/** The environment variables roster reads (CONFIG_ENV), mapped onto config fields. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): DeepPartial<ConfigInput> {
  const out: Record<string, unknown> = {};
  for (const { variable, path, parse } of CONFIG_ENV) {
    const raw = env[variable];
    if (raw === undefined || raw === "") continue;
    let value: unknown = raw;
    if (parse === "upper") value = raw.toUpperCase();
    else if (parse === "int") {
      value = Number(raw);
      if (!Number.isInteger(value)) throw new RosterError("CONFIG_INVALID", `${variable}: must be an integer, got "${raw}"`);
    } else if (parse === "bool") {
      if (!["1", "true", "0", "false"].includes(raw.toLowerCase())) throw new RosterError("CONFIG_INVALID", `${variable}: must be 1, true, 0 or false, got "${raw}"`);
      value = ["1", "true"].includes(raw.toLowerCase());
    }
    const keys = path.split(".");
    let target = out;
    for (const key of keys.slice(0, -1)) target = (target[key] ??= {}) as Record<string, unknown>;
    target[keys.at(-1)!] = value;
  }
  return out as DeepPartial<ConfigInput>;
}

function merge<T extends Record<string, unknown>>(base: T, over: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const prev = out[key];
    out[key] =
      typeof value === "object" && value !== null && !Array.isArray(value) && typeof prev === "object" && prev !== null
        ? merge(prev as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out as T;
}

/** The variable each config field is read from (configFromEnv), so an error names where a bad value came from. */
export const CONFIG_ENV_VARS: Readonly<Record<string, string>> = Object.fromEntries(CONFIG_ENV.map((e) => [e.path, e.variable]));

const SECRET_FIELDS = new Set(["mcp.token", "mcp.workerToken", "mcp.plannerToken"]);

export interface LoadConfigOptions {
  /** The CLI flag behind each field it sets ("threads" → "--threads"), for error messages. */
  flagNames?: Readonly<Record<string, string>>;
}

function valueAt(object: unknown, path: readonly PropertyKey[]): unknown {
  let value = object;
  for (const key of path) value = typeof value === "object" && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value;
}

/**
 * The flag or variable a field's value came from, or undefined for a default (or a
 * flag no name is known for): a flag wins over a variable, as in loadConfig.
 */
function sourceName(key: string, flags: DeepPartial<ConfigInput>, env: NodeJS.ProcessEnv, options: LoadConfigOptions): string | undefined {
  const fromFlag = valueAt(flags, key.split("."));
  if (fromFlag !== undefined) return options.flagNames?.[key];
  const variable = CONFIG_ENV_VARS[key];
  return variable !== undefined && env[variable] ? variable : undefined;
}

/** Where each value of a loaded config came from (configSource), kept beside it so that Config stays the schema's type. */
const SOURCES = new WeakMap<Config, ReadonlyMap<string, string>>();

/**
 * The flag (`--db`) or variable (`ROSTER_DB`) a field of `config` was set by, for a
 * message about its value that comes later than loading (a database file that is not
 * there, a personas folder that does not exist); undefined for a default, or for a
 * config loadConfig did not make.
 */
export function configSource(config: Config, key: string): string | undefined {
  return SOURCES.get(config)?.get(key);
}

/**
 * Defaults ← environment ← flags; every problem listed. A problem names the flag
 * or variable the bad value came from, and the value (`ROSTER_CONCURRENCY: Too
 * small: expected number to be >=1, got "0"`); one without a known source names
 * its config path. `env` undefined reads process.env.
 */
export function loadConfig(flags: DeepPartial<ConfigInput> = {}, env: NodeJS.ProcessEnv = process.env, options: LoadConfigOptions = {}): Config {
  const input = merge(merge({}, configFromEnv(env) as Record<string, unknown>), flags as Record<string, unknown>);
  const parsed = configSchema.safeParse(input);
  if (parsed.success) {
    setSystemClockOffset(parsed.data.clockOffsetMs);
    const sources = new Map<string, string>();
    for (const key of new Set([...Object.keys(options.flagNames ?? {}), ...CONFIG_ENV.map((e) => e.path)])) {
      const name = sourceName(key, flags, env, options);
      if (name !== undefined) sources.set(key, name);
    }
    SOURCES.set(parsed.data, sources);
    return parsed.data;
  }
  const problems = parsed.error.issues.map((issue) => {
    const key = issue.path.map(String).join(".");
    // A secret is named, never echoed.
    const got = (value: unknown) => (SECRET_FIELDS.has(key) ? "" : `, got ${JSON.stringify(value)}`);
    const name = sourceName(key, flags, env, options);
    if (name === undefined) return formatIssues([issue], "config");
    const fromFlag = valueAt(flags, issue.path);
    return `${name}: ${issue.message}${got(fromFlag !== undefined ? fromFlag : env[name])}`;
  });
  throw new RosterError("CONFIG_INVALID", problems.join("; "));
}
