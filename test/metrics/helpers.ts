import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "../../src/store/index.js";
import { personaFrontMatterSchema, type Persona } from "../../src/personas/schema.js";
import { toPersonaUpsert } from "../../src/personas/load.js";

/** Validated personas from raw front matter, as the supervisor takes them. */
export function personasFrom(raw: Array<Record<string, unknown>>): Persona[] {
  return raw.map((p) => ({ ...personaFrontMatterSchema.parse(p), definition: `You are ${String(p.id)}.`, sourcePath: null }));
}

/** A freshly migrated SQLite store in its own temp dir, with the given personas synced. */
export async function tempStore(options: {
  personas?: Array<Record<string, unknown>>;
  onTransaction?: (name: string, durationMs: number) => void;
  now?: number;
  /** The clock the store judges liveness on (a test's manual clock). */
  monotonic?: () => number;
} = {}): Promise<{ store: Store; dir: string; path: string; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "roster-obs-"));
  const path = join(dir, "roster.db");
  const now = options.now ?? 1_700_000_000_000;
  const store = await openStore({
    path,
    now,
    ...(options.onTransaction ? { onTransaction: options.onTransaction } : {}),
    ...(options.monotonic ? { monotonic: options.monotonic } : {}),
  });
  const personas = (options.personas ?? [
    { id: "planner", name: "Planner", adapter: { kind: "echo" }, retry: { maxAttempts: 1 } },
    { id: "coder", name: "Coder", adapter: { kind: "echo" }, retry: { maxAttempts: 2, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 } },
  ]).map((p) => toPersonaUpsert(personasFrom([p])[0]!));
  await store.personas.sync({ personas, now });
  return {
    store,
    dir,
    path,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition into samples (enough for tests). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    out.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return out;
}

/** The value of one series, 0 when absent. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value ?? 0;
}

/** Sum over every series of a metric that matches the labels given. */
export function sumOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

export async function httpGet(url: string): Promise<{ status: number; body: string; contentType: string | null }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text(), contentType: res.headers.get("content-type") };
}
