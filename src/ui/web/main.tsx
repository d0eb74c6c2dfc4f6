// The dashboard's front end: preact, hash routes, one EventSource for live change
// notices (each page refetches its own view when told something changed), dagre for
// the goal graph. Served by src/ui/server.ts; the API is src/ui/api.ts.
import { Graph, layout } from "@dagrejs/dagre";
import { render, type ComponentChildren } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import "./style.css";

type Dict = Record<string, any>;

// ---- session, fetch, live ------------------------------------------------------------
let csrf = "";
let user = "";

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

async function api<T = Dict>(path: string, init?: { method?: string; body?: unknown }): Promise<T> {
  const res = await fetch(`api/${path}`, {
    method: init?.method ?? "GET",
    credentials: "same-origin",
    headers: init?.body !== undefined ? { "content-type": "application/json", "x-roster-csrf": csrf } : {},
    ...(init?.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const data = (await res.json().catch(() => ({}))) as Dict;
  if (!res.ok) throw new ApiError(res.status, data.error?.code ?? String(res.status), data.error?.message ?? res.statusText, data.error?.field);
  return data as T;
}

type Listener = (change: Dict) => void;
const listeners = new Set<Listener>();
let liveState: "connecting" | "live" | "offline" = "connecting";
const liveStateListeners = new Set<() => void>();
function setLive(s: typeof liveState): void {
  liveState = s;
  for (const l of liveStateListeners) l();
}
function connectLive(): void {
  const source = new EventSource("api/events");
  source.addEventListener("hello", () => setLive("live"));
  source.addEventListener("change", (e) => {
    const change = JSON.parse((e as MessageEvent).data) as Dict;
    for (const l of listeners) l(change);
  });
  source.onerror = () => setLive("offline");
  source.onopen = () => setLive("live");
}

/** Loads `fetcher()` now and again after each change notice (at most every 400 ms while changes come). */
function useLive<T>(fetcher: () => Promise<T>, deps: unknown[], relevant?: (c: Dict) => boolean, throttleMs = 400): { data: T | null; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<number | null>(null);
  const inFlight = useRef(false);
  const again = useRef(false);
  const load = useCallback(() => {
    if (inFlight.current) {
      again.current = true;
      return;
    }
    inFlight.current = true;
    fetcher()
      .then((d) => {
        setData(d);
        setError(null);
      })
      .catch((e: Error) => setError(e.message))
      .finally(() => {
        inFlight.current = false;
        if (again.current) {
          again.current = false;
          load();
        }
      });
  }, deps);
  useEffect(() => {
    setData(null);
    load();
    const onChange: Listener = (c) => {
      if (relevant !== undefined && !relevant(c)) return;
      if (timer.current !== null) return;
      timer.current = window.setTimeout(() => {
        timer.current = null;
        load();
      }, throttleMs);
    };
    listeners.add(onChange);
    return () => {
      listeners.delete(onChange);
      if (timer.current !== null) clearTimeout(timer.current);
      timer.current = null;
    };
  }, [load]);
  return { data, error, reload: load };
}

/** Progress notices applied to running rows without a refetch. */
function useProgress(): Map<number, { fraction: number; message: string | null }> {
  const [map, setMap] = useState(new Map<number, { fraction: number; message: string | null }>());
  useEffect(() => {
    const l: Listener = (c) => {
      if (!Array.isArray(c.progress) || c.progress.length === 0) return;
      setMap((old) => {
        const next = new Map(old);
        for (const p of c.progress) next.set(p.id, { fraction: p.fraction, message: p.message });
        return next;
      });
    };
    listeners.add(l);
    return () => listeners.delete(l);
  }, []);
  return map;
}

// ---- routing ----------------------------------------------------------------------------
function useRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, "") || "overview").split("/");
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

// ---- small parts ---------------------------------------------------------------------------
const STATES = ["waiting", "pending", "claimed", "in_progress", "completed", "failed", "cancelled", "blocked", "awaiting_approval", "awaiting_input"];

function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false });
}
function fmtAgo(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined) return "—";
  const s = Math.round((now - ms) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
function fmtUsd(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : `$${n.toFixed(n < 1 ? 4 : 2)}`;
}
function Badge({ state }: { state: string }) {
  return <span class={`badge s-${state}`}>{state.replace("_", " ")}</span>;
}
function TaskLink({ id, title }: { id: number; title?: string }) {
  return (
    <a href={`#/task/${id}`}>
      #{id}
      {title !== undefined ? ` ${title}` : ""}
    </a>
  );
}
function Json({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span class="muted">none</span>;
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return <pre class="json">{text.length > 20000 ? `${text.slice(0, 20000)}\n… (${text.length} characters)` : text}</pre>;
}
function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}
function Loading({ error }: { error: string | null }) {
  return error !== null ? <p class="error" role="alert">{error}</p> : <p class="muted">Loading…</p>;
}

// ---- overview ----------------------------------------------------------------------------
function Chart({ t }: { t: Dict }) {
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

function Overview() {
  // Progress arrives in the notices themselves; the rest of the overview is read at most once a second.
  const { data, error } = useLive(() => api("overview"), [], undefined, 1_000);
  const progress = useProgress();
  if (data === null) return <Loading error={error} />;
  const counts: Dict = data.counts;
  const personas = Object.keys(counts).sort();
  const states = STATES.filter((s) => personas.some((p) => counts[p][s] !== undefined));
  const a = data.attention;
  const attentionCount = a.failed.length + a.blocked.length + a.parked.length + a.gated.length + a.pauses.length + a.breakers.length + a.budgets.length;
  return (
    <div class="grid">
      <Section title="Tasks by persona and state" id="h-counts">
        {personas.length === 0 ? (
          <p class="muted">No tasks yet.</p>
        ) : (
          <table class="counts">
            <thead>
              <tr>
                <th scope="col">persona</th>
                {states.map((s) => (
                  <th scope="col">
                    <Badge state={s} />
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {personas.map((p) => (
                <tr>
                  <th scope="row">{p}</th>
                  {states.map((s) => (
                    <td>{counts[p][s] !== undefined ? <a href={`#/tasks?persona=${encodeURIComponent(p)}&status=${s}`}>{counts[p][s]}</a> : ""}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title={`Needs attention (${attentionCount})`} id="h-attention">
        {attentionCount === 0 ? <p class="muted">Nothing needs you.</p> : null}
        <ul class="attention">
          {a.parked.map((t: Dict) => (
            <li>
              <Badge state={t.status} /> <TaskLink id={t.id} title={t.title} /> <span class="muted">{t.request?.question?.slice(0, 120) ?? ""}</span>
            </li>
          ))}
          {a.failed.map((t: Dict) => (
            <li>
              <Badge state="failed" /> <TaskLink id={t.id} title={t.title} /> <span class="muted">{t.errorCode ?? ""}</span>
            </li>
          ))}
          {a.blocked.map((t: Dict) => (
            <li>
              <Badge state="blocked" /> <TaskLink id={t.id} title={t.title} />
            </li>
          ))}
          {a.gated.map((g: Dict) => (
            <li>
              <span class="badge s-gated">paused</span> persona <a href="#/personas">{g.persona}</a>: {g.reasons.map((r: Dict) => r.code).join(", ")}
              {g.until !== null ? ` until ${fmtTime(g.until)}` : ""}
            </li>
          ))}
          {a.pauses.map((p: Dict) => (
            <li>
              <span class="badge s-gated">provider paused</span> {p.provider}: {p.reason} {p.until !== null ? `until ${fmtTime(p.until)}` : ""}
            </li>
          ))}
          {a.breakers.map((b: Dict) => (
            <li>
              <span class="badge s-gated">breaker {b.state}</span> {b.persona} after {b.consecutiveFailures} failures
            </li>
          ))}
          {a.budgets.map((b: Dict) => (
            <li>
              <span class="badge s-gated">budget spent</span> {b.scope} {b.key}: {fmtUsd(b.spentUsd)} of {fmtUsd(b.maxCostUsd)}
            </li>
          ))}
        </ul>
      </Section>
      <Section title={`Running (${data.running.length})`} id="h-running">
        {data.running.length === 0 ? <p class="muted">Nothing is running.</p> : null}
        <ul class="running">
          {data.running.map((t: Dict) => {
            const p = progress.get(t.id);
            const fraction = p?.fraction ?? t.progress ?? 0;
            return (
              <li>
                <TaskLink id={t.id} title={t.title} /> <span class="muted">{t.persona} · attempt {t.attempt}</span>
                <progress max={1} value={fraction} aria-label={`progress of task ${t.id}`} />
                <span class="muted">{p?.message ?? t.progressMessage ?? ""}</span>
              </li>
            );
          })}
        </ul>
      </Section>
      <Section title="Throughput" id="h-throughput">
        <Chart t={data.throughput} />
      </Section>
      <Section title="Goals" id="h-goals">
        <ul>
          {data.goals.map((g: Dict) => (
            <li>
              <Badge state={g.status} /> <a href={`#/goal/${g.id}`}>#{g.id} {g.title}</a>
            </li>
          ))}
        </ul>
      </Section>
      <Section title={`Agents (${data.agents.length})`} id="h-agents">
        <AgentTable agents={data.agents} />
      </Section>
      <Section title="Cost so far" id="h-cost">
        <p class="big">{fmtUsd(data.cost.total.costUsd)}</p>
        <p class="muted">
          {data.cost.total.tokens} tokens over {data.cost.total.attempts} attempts{data.cost.total.unpriced > 0 ? `, ${data.cost.total.unpriced} unpriced` : ""}
        </p>
        <table>
          <tbody>
            {data.cost.byPersona.map((c: Dict) => (
              <tr>
                <th scope="row">{c.key}</th>
                <td>{fmtUsd(c.costUsd)}</td>
                <td class="muted">{c.tokens} tokens</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </div>
  );
}

function AgentTable({ agents }: { agents: Dict[] }) {
  if (agents.length === 0) return <p class="muted">No agents.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">agent</th>
          <th scope="col">kind</th>
          <th scope="col">status</th>
          <th scope="col">heartbeat</th>
          <th scope="col">holds</th>
          <th scope="col">host / pid</th>
        </tr>
      </thead>
      <tbody>
        {agents.map((a) => (
          <tr>
            <td title={a.id}>{a.name}</td>
            <td>{a.kind}</td>
            <td>{a.status}</td>
            <td>{fmtAgo(a.lastHeartbeatAt)}</td>
            <td>{a.heldTasks}</td>
            <td class="muted">
              {a.hostname ?? ""} {a.pid ?? ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// ---- tasks list ---------------------------------------------------------------------------
function Tasks({ query }: { query: URLSearchParams }) {
  const [before, setBefore] = useState<number[]>([]);
  const filter = query.toString();
  useEffect(() => setBefore([]), [filter]);
  const cursor = before[before.length - 1];
  const { data, error } = useLive(() => api(`tasks?${filter}${cursor !== undefined ? `&before=${cursor}` : ""}`), [filter, cursor], (c) => cursor === undefined && c.kinds.some((k: string) => k !== "task:progress"));
  const setFilter = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    const q = new URLSearchParams();
    for (const k of ["status", "persona", "q", "root"]) {
      const v = String(form.get(k) ?? "").trim();
      if (v !== "") q.set(k, v);
    }
    location.hash = `#/tasks?${q}`;
  };
  return (
    <Section title="Tasks" id="h-tasks">
      <form class="filters" onSubmit={setFilter}>
        <label>
          state{" "}
          <select name="status" value={query.get("status") ?? ""}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          persona <input name="persona" value={query.get("persona") ?? ""} size={12} />
        </label>
        <label>
          title has <input name="q" value={query.get("q") ?? ""} size={16} />
        </label>
        <label>
          goal <input name="root" value={query.get("root") ?? ""} size={6} inputMode="numeric" />
        </label>
        <button type="submit">Filter</button>
      </form>
      {data === null ? (
        <Loading error={error} />
      ) : (
        <>
          <p class="muted">{data.total !== null ? `${data.total} tasks` : ""}</p>
          <table class="tasks">
            <thead>
              <tr>
                <th scope="col">id</th>
                <th scope="col">title</th>
                <th scope="col">persona</th>
                <th scope="col">state</th>
                <th scope="col">attempts</th>
                <th scope="col">updated</th>
              </tr>
            </thead>
            <tbody>
              {data.tasks.map((t: Dict) => (
                <tr>
                  <td>
                    <TaskLink id={t.id} />
                  </td>
                  <td>{t.title}</td>
                  <td>{t.persona}</td>
                  <td>
                    <Badge state={t.status} />
                  </td>
                  <td>
                    {t.attempts}/{t.maxAttempts}
                  </td>
                  <td>{fmtAgo(t.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="pager">
            <button disabled={before.length === 0} onClick={() => setBefore(before.slice(0, -1))}>
              ← Newer
            </button>
            <button disabled={data.nextBefore === null} onClick={() => setBefore([...before, data.nextBefore])}>
              Older →
            </button>
          </div>
        </>
      )}
    </Section>
  );
}

// ---- goal graph ----------------------------------------------------------------------------
const BIG_GRAPH = 80;
function GoalPage({ id }: { id: number }) {
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

// ---- task ------------------------------------------------------------------------------------
function ActionBar({ task, onDone }: { task: Dict; onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [text, setText] = useState("");
  const act = async (action: string, body: Dict = {}) => {
    setBusy(true);
    setMessage(null);
    try {
      await api(`tasks/${task.id}/${action}`, { method: "POST", body });
      setMessage(`${action}: done`);
      setText("");
      onDone();
    } catch (e) {
      setMessage((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const s = task.status;
  const terminal = s === "completed" || s === "failed" || s === "cancelled";
  return (
    <div class="actions">
      {s === "failed" || s === "cancelled" || s === "blocked" ? (
        <button disabled={busy} onClick={() => act("retry")}>
          Retry
        </button>
      ) : null}
      {!terminal ? (
        <button disabled={busy} class="danger" onClick={() => confirm(`Cancel task #${task.id} and block its dependents?`) && act("cancel", { reason: "cancelled from the dashboard" })}>
          Cancel
        </button>
      ) : null}
      {s === "awaiting_approval" ? (
        <>
          <label>
            note or reason <input value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
          </label>
          <button disabled={busy} onClick={() => act("approve", text !== "" ? { note: text } : {})}>
            Approve
          </button>
          <button disabled={busy || text.trim() === ""} class="danger" onClick={() => act("reject", { reason: text })}>
            Reject
          </button>
        </>
      ) : null}
      {s === "awaiting_input" ? (
        <>
          <label>
            answer <input value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
          </label>
          <button disabled={busy || text.trim() === ""} onClick={() => act("answer", { answer: text })}>
            Answer
          </button>
        </>
      ) : null}
      {message !== null ? (
        <span role="status" class="muted">
          {message}
        </span>
      ) : null}
    </div>
  );
}

function TaskPage({ id }: { id: number }) {
  const { data, error, reload } = useLive(() => api(`tasks/${id}`), [id], (c) => c.tasks === null || c.tasks.length === 0 || c.tasks.includes(id) || c.kinds.includes("external"));
  const progress = useProgress();
  if (data === null) return <Loading error={error} />;
  const t = data.task;
  const p = progress.get(id);
  return (
    <div class="grid task">
      <Section title={`#${t.id} ${t.title}`} id="h-task">
        <p>
          <Badge state={t.status} /> persona <strong>{t.persona}</strong> · attempt {t.attempts}/{t.maxAttempts} · priority {t.priority}
          {t.rootId !== t.id ? (
            <>
              {" "}
              · goal <a href={`#/goal/${t.rootId}`}>#{t.rootId}</a>
            </>
          ) : (
            <>
              {" "}
              · <a href={`#/goal/${t.id}`}>graph</a>
            </>
          )}
          {t.parentId !== null ? (
            <>
              {" "}
              · parent <TaskLink id={t.parentId} />
            </>
          ) : null}
        </p>
        {t.status === "in_progress" || t.status === "claimed" ? <progress max={1} value={p?.fraction ?? t.progress ?? 0} aria-label="progress" /> : null}
        <ActionBar task={t} onDone={reload} />
        {t.description ? <p class="description">{t.description}</p> : null}
        <dl class="fields">
          <dt>created</dt>
          <dd>
            {fmtTime(t.createdAt)} by {t.createdBy ?? "—"}
          </dd>
          <dt>run at</dt>
          <dd>{fmtTime(t.runAt)}</dd>
          <dt>claimed / started / finished</dt>
          <dd>
            {fmtTime(t.claimedAt)} / {fmtTime(t.startedAt)} / {fmtTime(t.finishedAt)}
          </dd>
          <dt>agent</dt>
          <dd>{t.assignedAgentId ?? "—"}</dd>
          <dt>timeout</dt>
          <dd>{t.timeoutMs} ms</dd>
          <dt>retry policy</dt>
          <dd>
            <code>{JSON.stringify(t.policy)}</code>
          </dd>
        </dl>
      </Section>
      {data.why !== null ? (
        <Section title="Why it is not running" id="h-why">
          <ul>
            {data.why.reasons.map((r: Dict) => (
              <li>
                <code>{r.code}</code> {r.message}
              </li>
            ))}
          </ul>
        </Section>
      ) : null}
      {t.error !== null ? (
        <Section title="Error" id="h-error">
          <p class="error">
            <code>{t.error.code}</code> {t.error.message}
          </p>
        </Section>
      ) : null}
      <Section title="Payload" id="h-payload">
        <Json value={t.payload} />
      </Section>
      <Section title="Result" id="h-result">
        <Json value={t.result} />
      </Section>
      <Section title="Graph" id="h-links">
        <h3>Depends on</h3>
        <ul>
          {t.dependencies.map((d: Dict) => (
            <li>
              <Badge state={d.status} /> <TaskLink id={d.id} title={d.title} />
            </li>
          ))}
        </ul>
        <h3>Dependents</h3>
        <ul>
          {t.dependents.map((d: Dict) => (
            <li>
              <Badge state={d.status} /> <TaskLink id={d.id} title={d.title} />
            </li>
          ))}
        </ul>
        <h3>Children</h3>
        <ul>
          {t.children.map((d: Dict) => (
            <li>
              <Badge state={d.status} /> <TaskLink id={d.id} title={d.title} />
            </li>
          ))}
        </ul>
      </Section>
      <Section title="Attempts" id="h-attempts">
        <table>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">agent</th>
              <th scope="col">claimed</th>
              <th scope="col">ended</th>
              <th scope="col">outcome</th>
              <th scope="col">usage</th>
            </tr>
          </thead>
          <tbody>
            {data.attempts.map((a: Dict) => (
              <tr>
                <td>{a.attempt}</td>
                <td>{a.agentId ?? "—"}</td>
                <td>{fmtTime(a.claimedAt)}</td>
                <td>{fmtTime(a.endedAt)}</td>
                <td>
                  {a.outcome ?? "—"} {a.error?.code ? <code>{a.error.code}</code> : null}
                </td>
                <td>{a.usage !== null ? `${a.usage.inputTokens + a.usage.outputTokens} tokens ${fmtUsd(a.usage.costUsd)}` : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      {data.requests.length > 0 ? (
        <Section title="Asked of a person" id="h-requests">
          <ul>
            {data.requests.map((r: Dict) => (
              <li>
                <strong>{r.kind}</strong> {fmtTime(r.askedAt)}: {r.question.slice(0, 300)} → {r.outcome ?? "open"} {r.answer ?? ""} {r.answeredBy ? `(${r.answeredBy})` : ""}
              </li>
            ))}
          </ul>
        </Section>
      ) : null}
      <Section title="Audit trail" id="h-events">
        <table class="events">
          <tbody>
            {t.events.map((e: Dict) => (
              <tr>
                <td class="muted">{fmtTime(e.at)}</td>
                <td>
                  <code>{e.type}</code>
                </td>
                <td>{e.attempt ?? ""}</td>
                <td>{e.agentId ?? ""}</td>
                <td class="muted">{e.data !== null ? JSON.stringify(e.data).slice(0, 200) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </div>
  );
}

// ---- add -------------------------------------------------------------------------------------
const PLAN_EXAMPLE = `tasks:
  - ref: build
    persona: implementer
    title: Build the thing
  - persona: reviewer
    title: Review the thing
    dependsOn: [build]
`;

function AddPage() {
  const [format, setFormat] = useState<"yaml" | "json">("yaml");
  const [text, setText] = useState(PLAN_EXAMPLE);
  const [result, setResult] = useState<Dict | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    try {
      setResult(await api("plans", { method: "POST", body: { format, text } }));
    } catch (err) {
      setError(err as ApiError);
    }
  };
  return (
    <Section title="Add a plan" id="h-add">
      <form onSubmit={submit} class="plan">
        <p class="muted">
          The plan file format of <code>roster add --file</code>: <code>{"{ tasks: [{ ref, persona, title, dependsOn, … }] }"}</code>, added all or nothing.
        </p>
        <label>
          format{" "}
          <select value={format} onChange={(e) => setFormat((e.target as HTMLSelectElement).value as "yaml" | "json")} name="format">
            <option value="yaml">YAML</option>
            <option value="json">JSON</option>
          </select>
        </label>
        <textarea name="plan" rows={14} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} aria-label="plan" spellcheck={false} />
        <button type="submit">Add plan</button>
      </form>
      {error !== null ? (
        <p class="error" role="alert">
          {error.code}: {error.message}
        </p>
      ) : null}
      {result !== null ? (
        <p role="status">
          Added{" "}
          {result.ids.map((id: number) => (
            <>
              <TaskLink id={id} />{" "}
            </>
          ))}
        </p>
      ) : null}
    </Section>
  );
}

// ---- agents, personas, schedules ---------------------------------------------------------
function AgentsPage() {
  const { data, error } = useLive(() => api("agents?all=1"), [], (c) => c.kinds.some((k: string) => k.startsWith("agent:") || k === "external"));
  if (data === null) return <Loading error={error} />;
  return (
    <Section title="Agents" id="h-agents-page">
      <AgentTable agents={data.agents} />
    </Section>
  );
}

/** A small, safe markdown reader: headings, lists, code blocks, paragraphs, `code`, **bold**; text is never HTML. */
function Markdown({ text }: { text: string }) {
  const blocks: ComponentChildren[] = [];
  const lines = text.split("\n");
  const inline = (s: string): ComponentChildren[] =>
    s.split(/(`[^`]+`|\*\*[^*]+\*\*)/).map((part) => (part.startsWith("`") && part.endsWith("`") && part.length > 1 ? <code>{part.slice(1, -1)}</code> : part.startsWith("**") && part.endsWith("**") && part.length > 3 ? <strong>{part.slice(2, -2)}</strong> : part));
  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!;
    if (line.startsWith("```")) {
      const code: string[] = [];
      for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) code.push(lines[i]!);
      i++;
      blocks.push(<pre class="json">{code.join("\n")}</pre>);
    } else if (/^#{1,6} /.test(line)) {
      const level = Math.min(6, line.indexOf(" ") + 2);
      const H = `h${level}` as "h3";
      blocks.push(<H>{inline(line.replace(/^#+ /, ""))}</H>);
      i++;
    } else if (/^\s*([-*]|\d+\.) /.test(line)) {
      const items: string[] = [];
      for (; i < lines.length && /^\s*([-*]|\d+\.) /.test(lines[i]!); i++) items.push(lines[i]!.replace(/^\s*([-*]|\d+\.) /, ""));
      blocks.push(
        <ul>
          {items.map((it) => (
            <li>{inline(it)}</li>
          ))}
        </ul>,
      );
    } else if (line.trim() === "") i++;
    else {
      const para: string[] = [];
      for (; i < lines.length && lines[i]!.trim() !== "" && !/^(#{1,6} |```|\s*([-*]|\d+\.) )/.test(lines[i]!); i++) para.push(lines[i]!);
      blocks.push(<p>{inline(para.join(" "))}</p>);
    }
  }
  return <div class="markdown">{blocks}</div>;
}

function PersonasPage() {
  const { data, error } = useLive(() => api("personas"), [], () => false);
  if (data === null) return <Loading error={error} />;
  return (
    <div class="grid">
      {data.personas.map((p: Dict) => (
        <Section title={`${p.name} (${p.id})`} id={`p-${p.id}`}>
          <p class="muted">
            {p.retiredAt !== null ? "retired · " : ""}
            {p.sourcePath ?? "no file"}
            {p.filePresent ? "" : " (file gone)"}
          </p>
          <dl class="fields">
            {Object.entries(p.config).map(([k, v]) => (
              <>
                <dt>{k}</dt>
                <dd>
                  <code>{typeof v === "object" ? JSON.stringify(v) : String(v)}</code>
                </dd>
              </>
            ))}
          </dl>
          <Markdown text={p.definition} />
        </Section>
      ))}
    </div>
  );
}

function SchedulesPage() {
  const { data, error } = useLive(() => api("schedules"), [], (c) => c.kinds.includes("task:enqueued") || c.kinds.includes("external"));
  if (data === null) return <Loading error={error} />;
  if (data.schedules.length === 0)
    return (
      <Section title="Schedules" id="h-sched">
        <p class="muted">
          No schedules. Add some with <code>roster schedule add</code> or <code>roster schedule sync schedules.yaml</code>.
        </p>
      </Section>
    );
  return (
    <Section title="Schedules" id="h-sched">
      <table>
        <thead>
          <tr>
            <th scope="col">id</th>
            <th scope="col">cron</th>
            <th scope="col">task</th>
            <th scope="col">next</th>
            <th scope="col">last</th>
            <th scope="col">missed</th>
            <th scope="col">state</th>
          </tr>
        </thead>
        <tbody>
          {data.schedules.map((s: Dict) => (
            <tr>
              <td>{s.id}</td>
              <td>
                <code>{s.cron}</code> {s.timezone ?? ""}
              </td>
              <td>
                {s.task.persona}: {s.task.title}
              </td>
              <td>{fmtTime(s.nextFireAt)}</td>
              <td>{fmtTime(s.lastFireAt)}</td>
              <td>{s.missed}</td>
              <td>{s.pausedAt !== null ? "paused" : "active"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

// ---- shell -------------------------------------------------------------------------------------
function Login({ onLogin }: { onLogin: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = String(new FormData(e.target as HTMLFormElement).get("token") ?? "");
    try {
      const r = await api<Dict>("login", { method: "POST", body: { token } });
      csrf = r.csrf;
      user = r.user;
      onLogin();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} class="card">
        <h1>roster</h1>
        <label>
          Dashboard token <input type="password" name="token" autoFocus autoComplete="current-password" />
        </label>
        <button type="submit">Sign in</button>
        {error !== null ? <p class="error" role="alert">{error}</p> : null}
      </form>
    </main>
  );
}

function LiveDot() {
  const [, force] = useState(0);
  useEffect(() => {
    const l = () => force((n) => n + 1);
    liveStateListeners.add(l);
    return () => liveStateListeners.delete(l);
  }, []);
  return (
    <span class={`live ${liveState}`} role="status" aria-live="polite" data-live={liveState}>
      {liveState}
    </span>
  );
}

const NAV: Array<[string, string]> = [
  ["overview", "Overview"],
  ["tasks", "Tasks"],
  ["add", "Add"],
  ["agents", "Agents"],
  ["personas", "Personas"],
  ["schedules", "Schedules"],
];

function App() {
  const [state, setState] = useState<"loading" | "login" | "ready">("loading");
  const [theme, setTheme] = useState<string>(localStorage.getItem("roster-theme") ?? "auto");
  const route = useRoute();
  const start = () =>
    api<Dict>("session")
      .then((s) => {
        csrf = s.csrf;
        user = s.user;
        setState("ready");
        connectLive();
      })
      .catch((e: ApiError) => setState(e.status === 401 ? "login" : "loading"));
  useEffect(() => void start(), []);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("roster-theme", theme);
  }, [theme]);
  if (state === "login") return <Login onLogin={() => void start()} />;
  if (state === "loading") return <p class="muted">Loading…</p>;
  const [page, rawArg] = route;
  const [arg, search] = (rawArg ?? page ?? "").split("?");
  const pageName = (page ?? "overview").split("?")[0]!;
  const query = new URLSearchParams((page ?? "").includes("?") ? (page ?? "").split("?")[1] : search ?? "");
  let body: ComponentChildren;
  if (pageName === "task" && arg !== undefined && /^\d+$/.test(arg)) body = <TaskPage id={Number(arg)} />;
  else if (pageName === "goal" && arg !== undefined && /^\d+$/.test(arg)) body = <GoalPage id={Number(arg)} />;
  else if (pageName === "tasks") body = <Tasks query={query} />;
  else if (pageName === "add") body = <AddPage />;
  else if (pageName === "agents") body = <AgentsPage />;
  else if (pageName === "personas") body = <PersonasPage />;
  else if (pageName === "schedules") body = <SchedulesPage />;
  else body = <Overview />;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header>
        <strong class="brand">roster</strong>
        <nav aria-label="pages">
          {NAV.map(([id, label]) => (
            <a href={`#/${id}`} aria-current={pageName === id ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <LiveDot />
        <label class="theme">
          theme{" "}
          <select value={theme} onChange={(e) => setTheme((e.target as HTMLSelectElement).value)}>
            <option value="auto">auto</option>
            <option value="light">light</option>
            <option value="dark">dark</option>
          </select>
        </label>
        <span class="muted">{user}</span>
      </header>
      <main id="main" tabIndex={-1}>
        {body}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
