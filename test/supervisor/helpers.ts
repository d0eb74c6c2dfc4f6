import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadConfig, type Config, type ConfigInput } from "../../src/config.js";
import { silentLogger } from "../../src/logging/logger.js";
import { openStore, type Store, type TaskEvent } from "../../src/store/index.js";
import type { SupervisorEventBus, SupervisorEventMap, SupervisorEventName } from "../../src/supervisor/events.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import type { SupervisorOptions } from "../../src/supervisor/options.js";
import { Supervisor } from "../../src/supervisor/supervisor.js";
import { nextOn } from "../helpers/events.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

export const FIXTURES = new URL("../fixtures/", import.meta.url);

/** Persona front matter for a test; written as a file so the real loader parses it. */
export interface TestPersona {
  id: string;
  adapter: Record<string, unknown>;
  concurrency?: number;
  leaseMs?: number;
  timeoutMs?: number;
  retry?: Record<string, unknown>;
  /** Served only by external agents (no supervisor claims it). */
  external?: boolean;
  /** The provider account its rate and usage limits pause (docs/economics.md). */
  provider?: string;
}

export function writePersonas(dir: string, personas: TestPersona[]): void {
  for (const p of personas) {
    const front = { name: p.id, concurrency: 50, leaseMs: 5_000, timeoutMs: 30_000, retry: { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 }, ...p };
    writeFileSync(join(dir, `${p.id}.md`), `---\n${stringify(front)}---\nTest persona ${p.id}.\n`);
  }
}

/** Copies test/fixtures/<name> into the personas folder (module adapters must live there). */
export function copyFixture(dir: string, name: string): void {
  copyFileSync(new URL(name, FIXTURES), join(dir, name));
}

export interface Harness {
  temp: TempDir;
  personasDir: string;
  dbPath: string;
  config: Config;
  store: Store;
  supervisor: Supervisor;
  close(): Promise<void>;
}

/** A real store on a temp file, real persona files, and a supervisor with short intervals (not started). */
export async function harness(
  personas: TestPersona[],
  options: { config?: Partial<ConfigInput>; supervisor?: Partial<SupervisorOptions>; fixtures?: string[] } = {},
): Promise<Harness> {
  const temp = makeTempDir("roster-sup-");
  const personasDir = temp.path("personas");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(personasDir);
  writePersonas(personasDir, personas);
  for (const name of options.fixtures ?? []) copyFixture(personasDir, name);
  const dbPath = temp.path("roster.db");
  const config = loadConfig(
    { dbPath, personasDir, logLevel: "silent", threads: 2, pollIntervalMs: 20, reapIntervalMs: 100, shutdownGraceMs: 2_000, ...options.config } as never,
    {},
  );
  const store = await openStore({ path: dbPath, busyTimeoutMs: config.busyTimeoutMs, maxPayloadBytes: config.maxPayloadBytes });
  const loaded = await syncPersonas(store, personasDir, Date.now());
  const supervisor = new Supervisor({ store, personas: loaded, config, logger: silentLogger(), abortGraceMs: 300, ...options.supervisor });
  let closed = false;
  return {
    temp,
    personasDir,
    dbPath,
    config,
    store,
    supervisor,
    close: async () => {
      if (closed) return;
      closed = true;
      await supervisor.stop("test over");
      await store.close();
      temp.cleanup();
    },
  };
}

/** Resolves with the next supervisor event that passes `predicate` (nextOn). */
export function next<K extends SupervisorEventName>(
  events: SupervisorEventBus,
  name: K,
  predicate: (payload: SupervisorEventMap[K]) => boolean = () => true,
  timeoutMs = 20_000,
): Promise<SupervisorEventMap[K]> {
  return nextOn(events, name, predicate, timeoutMs, `no "${name}" supervisor event within ${timeoutMs} ms`);
}

/** Resolves once `count` run-finished events with the given outcome (any when omitted) have been seen. */
export function finished(
  events: SupervisorEventBus,
  count: number,
  predicate: (e: SupervisorEventMap["task:run-finished"]) => boolean = () => true,
  timeoutMs = 30_000,
): Promise<Array<SupervisorEventMap["task:run-finished"]>> {
  const seen: Array<SupervisorEventMap["task:run-finished"]> = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`saw ${seen.length} of ${count} run-finished events within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = events.on("task:run-finished", (e) => {
      if (!predicate(e)) return;
      seen.push(e);
      if (seen.length >= count) {
        clearTimeout(timer);
        off();
        resolve(seen);
      }
    });
  });
}

export function eventTypes(events: TaskEvent[]): string[] {
  return events.map((e) => e.type);
}
