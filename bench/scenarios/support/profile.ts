/**
 * Reads V8 .cpuprofile files (from `node --cpu-prof`) and summarises the functions with
 * the most self time: what bounds a run, from a measurement rather than a guess.
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { ROOT_DIR } from "./paths.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  function: string;
  where: string;
  selfMs: number;
  selfPercent: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Time not idle ("(idle)" and piscina's atomicsWaitLoop excluded). */
  busyMs: number;
  top: HotFunction[];
}

function where(url: string, line: number): string {
  if (url === "") return "";
  let path = url.startsWith("file://") ? url.slice(7) : url;
  if (path.startsWith(ROOT_DIR)) path = relative(ROOT_DIR, path);
  path = path.replace(/^.*node_modules\//, "");
  return `${path}:${line + 1}`;
}

export function summarizeProfile(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { fn: string; at: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    total += dt;
    const fn = node.callFrame.functionName || "(anonymous)";
    // piscina's worker threads block in Atomics.wait while they have no task: idle, not work.
    if (fn === "(idle)" || fn === "atomicsWaitLoop") {
      idle += dt;
      continue;
    }
    const at = where(node.callFrame.url, node.callFrame.lineNumber);
    const key = `${fn}\u0000${at}`;
    const entry = self.get(key) ?? { fn, at, us: 0 };
    entry.us += dt;
    self.set(key, entry);
  }
  const busy = total - idle;
  const list = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ function: e.fn, where: e.at, selfMs: e.us / 1000, selfPercent: busy > 0 ? (e.us / busy) * 100 : 0 }));
  return { file: basename(file), totalMs: total / 1000, busyMs: busy / 1000, top: list };
}

/** Every profile in a folder, the busiest first (the main thread and each worker thread write their own). */
export function summarizeProfiles(dir: string, top = 12): ProfileSummary[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => summarizeProfile(join(dir, f), top))
    .sort((a, b) => b.busyMs - a.busyMs);
}
