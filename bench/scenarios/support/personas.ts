/** Persona files for the supervised scenarios, written into a run's own personas folder. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";

export interface BenchPersonaFile {
  id: string;
  adapter: Record<string, unknown>;
  concurrency: number;
  leaseMs?: number;
  timeoutMs?: number;
}

export function writePersona(dir: string, persona: BenchPersonaFile): void {
  mkdirSync(dir, { recursive: true });
  const front = {
    id: persona.id,
    name: persona.id,
    adapter: persona.adapter,
    concurrency: persona.concurrency,
    leaseMs: persona.leaseMs ?? 30_000,
    timeoutMs: persona.timeoutMs ?? 60_000,
    retry: { maxAttempts: 3, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 },
  };
  writeFileSync(join(dir, `${persona.id}.md`), `---\n${stringify(front)}---\nA benchmark persona.\n`);
}

/**
 * A `module` adapter that returns when, on the shared wall clock with sub-ms
 * resolution (performance.timeOrigin + performance.now()), it started.
 */
export function writeStampAdapter(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "stamp.mjs");
  writeFileSync(file, "export function run() {\n  return { startedAt: performance.timeOrigin + performance.now() };\n}\n");
  return "./stamp.mjs";
}
