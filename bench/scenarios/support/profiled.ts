/** Runs one measure again under `node --cpu-prof` and summarises where its time went. */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runInChild } from "./child.js";
import { summarizeProfiles, type ProfileSummary } from "./profile.js";
import { fmt } from "./stats.js";
import type { ScenarioContext, Table } from "./types.js";

export async function profileRun(
  ctx: ScenarioContext,
  call: { modulePath: string; fn: string; args: (dir: string) => unknown },
): Promise<{ summaries: ProfileSummary[]; result: unknown }> {
  const dir = mkdtempSync(join(ctx.workDir, "profile-"));
  try {
    const profDir = join(dir, "prof");
    const result = await runInChild<unknown>({
      modulePath: call.modulePath,
      fn: call.fn,
      args: call.args(dir),
      execArgv: ["--cpu-prof", `--cpu-prof-dir=${profDir}`],
    });
    return { summaries: summarizeProfiles(profDir), result };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The busiest threads' top self-time functions, as tables. */
export function profileTables(label: string, summaries: ProfileSummary[], threads = 3, top = 10): Table[] {
  return summaries.slice(0, threads).map((s, i) => ({
    caption: `Profile (${label}), thread ${i + 1} of ${summaries.length} by busy time: busy ${fmt(s.busyMs)} ms of ${fmt(s.totalMs)} ms sampled; top self time:`,
    columns: ["function", "where", "self ms", "% of busy"],
    rows: s.top.slice(0, top).map((f) => [f.function, f.where, fmt(f.selfMs), fmt(f.selfPercent, 1)]),
  }));
}
