import { z } from "zod";

/**
 * The `workspace` option of an agent persona: each task attempt gets its own git
 * worktree on its own branch, so agents running side by side never share files.
 */
export const KEEP_MODES = ["always", "on-failure", "never"] as const;
export type KeepMode = (typeof KEEP_MODES)[number];
/** Keep a failed attempt's worktree for inspection; remove a successful one. */
export const KEEP_DEFAULT: KeepMode = "on-failure";
/** Branches are `<prefix>task-<id>-a<attempt>`. */
export const BRANCH_PREFIX_DEFAULT = "roster/";

const BRANCH_PREFIX = /^(?:[A-Za-z0-9._-]+\/)*$/;

export const workspaceSchema = z
  .object({
    kind: z.literal("worktree"),
    /** The repository (any folder inside it). Relative paths resolve against the persona file's folder. */
    repo: z.string().min(1),
    /** Branch, tag or commit the worktree starts from. */
    base: z.string().min(1).default("HEAD"),
    /** What happens to the worktree after the attempt (the branch and its commits always stay). */
    keep: z.enum(KEEP_MODES).default(KEEP_DEFAULT),
    /** After a successful attempt, commit whatever the agent changed but did not commit. Default false. */
    autoCommit: z.boolean().default(false),
    /** Folder that holds the worktrees; default `<repo>.roster-worktrees` next to the repository. */
    dir: z.string().min(1).optional(),
    /** Prefix of the branch names: empty or folders ending in `/`. */
    branchPrefix: z.string().regex(BRANCH_PREFIX, "must be empty or path segments each ending in /, e.g. roster/").default(BRANCH_PREFIX_DEFAULT),
  })
  .strict();

export type WorkspaceConfig = z.infer<typeof workspaceSchema>;
export type WorkspaceInput = z.input<typeof workspaceSchema>;
