/** Resource sampling for a measured process: peak RSS and CPU time. */

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
