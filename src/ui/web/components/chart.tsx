// The overview's throughput chart: completions and failures per minute over the last hour, as SVG bars.
import type { Dict } from "../client";

export function Chart({ t }: { t: Dict }) {
  const buckets: Dict[] = t.buckets;
  const n = 60;
  const series = Array.from({ length: n }, (_, i) => buckets.find((b) => b.at === t.since + i * t.bucketMs) ?? { completed: 0, failed: 0 });
  const max = Math.max(1, ...series.map((b) => b.completed + b.failed));
  const w = 600;
  const h = 90;
  const bw = w / n;
  const done = series.reduce((s, b) => s + b.completed, 0);
  const failed = series.reduce((s, b) => s + b.failed, 0);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`Last hour: ${done} completed, ${failed} failed`} preserveAspectRatio="none">
        {series.map((b, i) => {
          const hc = (b.completed / max) * (h - 4);
          const hf = (b.failed / max) * (h - 4);
          return (
            <g key={i}>
              <rect x={i * bw + 0.5} y={h - hc} width={bw - 1} height={hc} class="bar-ok" />
              <rect x={i * bw + 0.5} y={h - hc - hf} width={bw - 1} height={hf} class="bar-fail" />
            </g>
          );
        })}
      </svg>
      <figcaption>
        Last hour, per minute: <span class="ok">{done} completed</span>, <span class="bad">{failed} failed</span>
      </figcaption>
    </figure>
  );
}
