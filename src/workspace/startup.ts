import { dirname } from "node:path";
import { coerceError } from "../errors.js";
import type { Persona } from "../personas/schema.js";
import type { Store } from "../store/types.js";
import { pruneStaleWorktrees, resolveWorkspace } from "./worktrees.js";

/**
 * Prune-at-start for every repository a persona works in: called by whatever
 * starts running tasks (`roster start` after its first reap, `roster run`), so the
 * worktrees of attempts that a crash interrupted do not pile up. An attempt that
 * the database still shows as claimed or in progress keeps its worktree (another
 * process may be running it); so do worktrees kept on purpose.
 */
export interface WorkspacePruneReport {
  repo: string;
  personas: string[];
  removed: string[];
  kept: string[];
  error?: Error;
}

/** Upper bound on the running attempts read to decide what is stale. */
const RUNNING_LIMIT = 1_000_000;

export async function pruneWorkspacesAtStart(params: { store: Store; personas: Persona[] }): Promise<WorkspacePruneReport[]> {
  const groups = new Map<string, { personas: string[]; config: ReturnType<typeof resolveWorkspace> }>();
  for (const persona of params.personas) {
    if (persona.adapter.kind !== "agent" || persona.adapter.workspace === undefined) continue;
    const config = resolveWorkspace(persona.adapter.workspace, persona.sourcePath === null ? null : dirname(persona.sourcePath));
    const key = JSON.stringify([config.repo, config.dir ?? null, config.branchPrefix]);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { personas: [persona.id], config });
    else group.personas.push(persona.id);
  }
  if (groups.size === 0) return [];
  const running = new Set((await params.store.tasks.running({ limit: RUNNING_LIMIT })).map((t) => `${t.id}/${t.attempt}`));
  const reports: WorkspacePruneReport[] = [];
  for (const { personas, config } of groups.values()) {
    try {
      const result = await pruneStaleWorktrees({ config, isRunning: (taskId, attempt) => running.has(`${taskId}/${attempt}`) });
      reports.push({ repo: config.repo, personas, ...result });
    } catch (error) {
      // One unreachable repository must not stop the others (or the start): the caller logs it.
      reports.push({ repo: config.repo, personas, removed: [], kept: [], error: coerceError(error) });
    }
  }
  return reports;
}
