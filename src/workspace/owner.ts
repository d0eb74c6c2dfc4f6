import type { DatabaseIdentity } from "../store/service-types.js";

/**
 * Whose git work a name is. Every branch, worktree folder and wip ref an agent attempt
 * leaves carries the identity of the database that ran it (Store.maintenance.identity(),
 * table roster_meta), so a database never takes another's for its own, not even for a task
 * with the same id (a second database on the same repository, or a new one made after the
 * file was deleted):
 *   branch     <prefix><database>/task-<id>-a<attempt>
 *   folder     <worktrees dir>/<database>/task-<id>-a<attempt>
 *   wip ref    refs/roster/wip/<database>/<id>/<attempt>
 * Tasks created before databases had an identity (up to legacyTaskIdsUpTo), and runs
 * without a database (adapter tests), keep the names without it (owner ""), so the work
 * they left is still theirs.
 */
export function ownerOf(database: DatabaseIdentity | undefined, taskId: number): string {
  return database === undefined || taskId <= database.legacyTaskIdsUpTo ? "" : database.id;
}

/** The owner's path segment in names: "" or `<owner>/`. */
export function ownerSegment(owner: string | undefined): string {
  return owner === undefined || owner === "" ? "" : `${owner}/`;
}
