/** Resource sampling for a measured process: peak RSS and CPU time. */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc's CPU times. */
export const CLOCK_TICKS: number = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** What the benchmarks read of a process's or thread's /proc stat file. */
export interface ProcStat {
  ppid: number;
  /** utime + stime of the process (or thread) itself, in ticks (CLOCK_TICKS a second). */
  own: number;
  /** cutime + cstime: its children that it has waited for, in ticks. */
  reaped: number;
}

/** Reads `/proc/<pid>/stat` or `/proc/self/task/<tid>/stat`; null once it is gone (or off Linux). */
export function readProcStat(path: string): ProcStat | null {
  try {
    const text = readFileSync(path, "utf8");
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

export interface RssSampler {
  /** Samples so far: [ms since start, RSS in MB]. */
  samples: Array<[number, number]>;
  stop(): { peakRssMb: number; samples: Array<[number, number]> };
}

/** Samples RSS every `intervalMs` and reports the peak, including the OS's own maxRSS. */
export function sampleRss(intervalMs = 50): RssSampler {
  const started = performance.now();
  const samples: Array<[number, number]> = [];
  const take = () => samples.push([Math.round(performance.now() - started), process.memoryUsage.rss() / 1048576]);
  take();
  const timer = setInterval(take, intervalMs);
  timer.unref();
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
      // maxRSS is in kilobytes and covers the whole life of the process.
      const osPeak = process.resourceUsage().maxRSS / 1024;
      return { peakRssMb: Math.max(osPeak, ...samples.map((s) => s[1])), samples };
    },
  };
}

/** CPU used by this process over a window, in % of one core. */
export async function cpuOverWindow(windowMs: number): Promise<{ cpuPercent: number; windowMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  return { cpuPercent: ((cpu.user + cpu.system) / 1000 / wall) * 100, windowMs: wall };
}

/** CPU time of this process's threads (Linux /proc), main thread apart. */
export interface ThreadCpu {
  /** The main thread's CPU time, ms. */
  mainMs: number;
  /** Every other thread's (worker threads, V8's compiler and GC helpers, libuv's pool), ms. */
  otherMs: number;
}

/**
 * Starts a reading of the process's CPU time by thread; `stop` gives the time spent since.
 * Read from /proc/self/task/<tid>/stat (utime + stime, in clock ticks: 10 ms at 100 a
 * second), so a window should be long against a tick. Null off Linux.
 */
export function threadCpu(): { stop(): ThreadCpu } | null {
  const read = (): Map<string, number> | null => {
    let tids: string[];
    try {
      tids = readdirSync("/proc/self/task");
    } catch {
      return null;
    }
    const ticks = new Map<string, number>();
    for (const tid of tids) {
      // A thread that ended between the listing and its read is left out.
      const stat = readProcStat(`/proc/self/task/${tid}/stat`);
      if (stat !== null) ticks.set(tid, stat.own);
    }
    return ticks;
  };
  const before = read();
  if (before === null) return null;
  return {
    stop() {
      const after = read() ?? new Map<string, number>();
      let mainMs = 0;
      let otherMs = 0;
      // A thread that ended in the window is lost, and one that started counts from zero.
      for (const [tid, ticks] of after) {
        const ms = ((ticks - (before.get(tid) ?? 0)) * 1000) / CLOCK_TICKS;
        if (tid === String(process.pid)) mainMs += ms;
        else otherMs += ms;
      }
      return { mainMs, otherMs };
    },
  };
}
