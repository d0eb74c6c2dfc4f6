// A goal's subtree as a DAG laid out by dagre, nodes coloured by state, live.
import { Graph, layout } from "@dagrejs/dagre";
import { useMemo } from "preact/hooks";
import { api, type Dict } from "../client";
import { Badge, Loading, Section } from "../components/common";
import { fmtUsd } from "../format";
import { useLive } from "../hooks";

const BIG_GRAPH = 80;
export function GoalPage({ id }: { id: number }) {
  const { data, error } = useLive(() => api(`goals/${id}/graph`), [id]);
  // Laid out again only when the graph's shape changes (a task or a link added); a change of
  // state alone recolours the nodes in place.
  const shape = data === null ? "" : `${data.nodes.map((n: Dict) => n.id).join(",")}|${data.edges.map((e: Dict) => `${e.from}>${e.to}`).join(",")}`;
  const laid = useMemo(() => {
    if (data === null) return null;
    // Above BIG_GRAPH tasks the planner-to-child links are left out and ranks are found by
    // longest path: dagre's ordering of hundreds of long parent edges takes seconds.
    const big = data.nodes.length > BIG_GRAPH;
    const edges = big ? data.edges.filter((e: Dict) => e.kind !== "parent") : data.edges;
    const g = new Graph();
    g.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 48, marginx: 12, marginy: 12, ...(big ? { ranker: "longest-path" } : {}) });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of data.nodes) g.setNode(String(n.id), { width: 180, height: 46 });
    for (const e of edges) g.setEdge(String(e.from), String(e.to));
    layout(g);
    const graph = g.graph() as { width?: number; height?: number };
    return { g, edges, big, width: graph.width ?? 0, height: graph.height ?? 0 };
  }, [shape]);
  if (data === null || laid === null) return <Loading error={error} />;
  const tally: Dict = {};
  for (const n of data.nodes) tally[n.status] = (tally[n.status] ?? 0) + 1;
  return (
    <Section title={`Goal #${data.rootId}`} id="h-goal">
      <p class="legend">
        {Object.entries(tally).map(([s, n]) => (
          <span>
            <Badge state={s} /> {String(n)}{" "}
          </span>
        ))}
        {data.truncated ? <strong> (first {data.nodes.length} tasks drawn)</strong> : null}
        {laid.big ? <span class="muted"> (over {BIG_GRAPH} tasks: planner-to-child links not drawn)</span> : null}
      </p>
      <p class="muted" data-cost="goal">
        Cost of the goal: <strong>{fmtUsd(data.cost.costUsd)}</strong> · {data.cost.tokens} tokens over {data.cost.attempts} attempts
        {data.cost.unpriced > 0 ? ` (${data.cost.unpriced} unpriced)` : ""}
      </p>
      <div class="graph">
        <svg width={laid.width} height={laid.height} role="group" aria-label={`Task graph of goal ${data.rootId}`} data-nodes={data.nodes.length}>
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
            </marker>
          </defs>
          {laid.edges.map((e: Dict) => {
            const pts = (laid.g.edge(String(e.from), String(e.to)) as { points?: Array<{ x: number; y: number }> } | undefined)?.points ?? [];
            // A smooth curve through dagre's bend points: each bend is a control point, the midpoints on-curve.
            let d = pts.length > 0 ? `M${pts[0]!.x},${pts[0]!.y}` : "";
            for (let i = 1; i < pts.length - 1; i++) d += ` Q${pts[i]!.x},${pts[i]!.y} ${(pts[i]!.x + pts[i + 1]!.x) / 2},${(pts[i]!.y + pts[i + 1]!.y) / 2}`;
            if (pts.length > 1) d += ` L${pts[pts.length - 1]!.x},${pts[pts.length - 1]!.y}`;
            return <path d={d} class={`edge ${e.kind}`} marker-end="url(#arrow)" />;
          })}
          {data.nodes.map((n: Dict) => {
            const p = laid.g.node(String(n.id)) as { x: number; y: number; width: number; height: number };
            return (
              <a href={`#/task/${n.id}`} class={`node s-${n.status}`} data-status={n.status} data-id={n.id} aria-label={`#${n.id} ${n.title}: ${n.status}`}>
                <rect x={p.x - p.width / 2} y={p.y - p.height / 2} width={p.width} height={p.height} rx={6} />
                <text x={p.x - p.width / 2 + 8} y={p.y - 5}>
                  #{n.id} {n.persona}
                </text>
                <text x={p.x - p.width / 2 + 8} y={p.y + 13} class="title">
                  {n.title.length > 26 ? `${n.title.slice(0, 25)}…` : n.title}
                </text>
              </a>
            );
          })}
        </svg>
      </div>
    </Section>
  );
}
