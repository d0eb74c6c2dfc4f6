// The overview: counts per persona and state, what needs attention, running tasks with
// live progress, throughput, goals, agents and cost so far.
import { api, type Dict } from "../client";
import { AgentTable } from "../components/agent-table";
import { Chart } from "../components/chart";
import { Badge, Loading, Section, TaskLink } from "../components/common";
import { STATES, fmtTime, fmtUsd } from "../format";
import { useLive, useProgress } from "../hooks";

export function Overview() {
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
