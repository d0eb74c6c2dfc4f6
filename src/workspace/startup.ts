import { dirname } from "node:path";
import { coerceError, isRosterError } from "../errors.js";
import type { Persona } from "../personas/schema.js";
import type { Store } from "../store/types.js";
import { pruneStaleWorktrees, resolveWorkspace } from "./worktrees.js";

/**
 * Prune-at-start for every repository an agent persona works in, called by what
 * starts running tasks (`roster start`, `roster run`), so the worktrees of attempts
 * a crash interrupted do not pile up. An attempt keeps its worktree while the
 * database shows it claimed or in progress under a lease that has not expired
 * (another process may be running it); worktrees kept on purpose stay too. Only this
 * database's worktrees are looked at (./owner.ts): its own names, and the names without an
 * owner of its tasks made before databases had one; another database's are never touched.
 */
export interface WorkspacePruneReport {
  repo: string;
  personas: string[];
  removed: string[];
  kept: string[];
  error?: Error;
}

/** The part of a logger this needs (pino's shape). */
interface PruneLogger {
  info(data: object, message: string): void;
  warn(data: object, message: string): void;
}

export async function pruneWorkspacesAtStart(params: { store: Store; personas: Persona[]; now: number; logger?: PruneLogger }): Promise<WorkspacePruneReport[]> {
  const groups = new Map<string, { personas: string[]; config: ReturnType<typeof resolveWorkspace> }>();
  for (const persona of params.personas) {
    if (persona.adapter.kind !== "agent" || persona.adapter.workspace === undefined) continue;
    const config = resolveWorkspace(persona.adapter.workspace, persona.sourcePath === null ? null : dirname(persona.sourcePath));
    const key = JSON.stringify([config.repo, config.dir ?? null, config.branchPrefix]);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { personas: [persona.id], config });
    else group.personas.push(persona.id);
  }
  const isRunning = async (taskId: number, attempt: number): Promise<boolean> => {
    try {
      const task = await params.store.tasks.get({ taskId, eventLimit: 0 });
      const leased = task.status === "claimed" || task.status === "in_progress";
      return leased && task.attempts === attempt && (task.leaseExpiresAt ?? 0) > params.now;
    } catch (error) {
      // A worktree of a task this database does not have is not running here.
      if (isRosterError(error, "TASK_NOT_FOUND")) return false;
      throw error;
    }
  };
  const database = await params.store.maintenance.identity();
  const reports: WorkspacePruneReport[] = [];
  for (const { personas, config } of groups.values()) {
    try {
      const result = await pruneStaleWorktrees({ config: { ...config, owner: database.id }, isRunning });
      if (database.legacyTaskIdsUpTo > 0) {
        const legacy = await pruneStaleWorktrees({ config: { ...config, owner: "" }, isRunning, owns: (taskId) => taskId <= database.legacyTaskIdsUpTo });
        result.removed.push(...legacy.removed);
        result.kept.push(...legacy.kept);
      }
      reports.push({ repo: config.repo, personas, ...result });
      if (result.removed.length > 0) params.logger?.info({ repo: config.repo, removed: result.removed }, "removed worktrees left by interrupted attempts");
    } catch (error) {
      // One unreachable repository must not stop the others, nor the start.
      const e = coerceError(error);
      reports.push({ repo: config.repo, personas, removed: [], kept: [], error: e });
      params.logger?.warn({ repo: config.repo, err: e }, "could not prune the repository's stale worktrees");
    }
  }
  return reports;
}
