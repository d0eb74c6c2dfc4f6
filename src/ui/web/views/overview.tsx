// The overview: counts per persona and state, what needs attention, running tasks with
// live progress, throughput, goals, agents and cost so far.
import type { ComponentChildren } from "preact";
import { api, type Dict } from "../client";
import { AgentTable } from "../components/agent-table";
import { Attention } from "../components/attention";
import { Chart } from "../components/chart";
import { Badge, Loading, Section, TaskLink } from "../components/common";
import { STATES, fmtUsd } from "../format";
import { useLive, useProgress } from "../hooks";

export function Overview() {
  // Progress arrives in the notices themselves; the rest of the overview is read at most once a second.
  const { data, error } = useLive(() => api("overview"), [], undefined, 1_000);
  const progress = useProgress();
  if (data === null) return <Loading error={error} />;
  const counts: Dict = data.counts;
  const personas = Object.keys(counts).sort();
  const states = STATES.filter((s) => personas.some((p) => counts[p][s] !== undefined));
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
      <Attention a={data.attention} />
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
        {data.cost.byPersona.length > 0 ? <CostTable caption="By persona" rows={data.cost.byPersona} label={(key) => key} /> : null}
        {data.cost.byGoal.length > 0 ? (
          <CostTable
            caption="By goal"
            rows={data.cost.byGoal}
            label={(key) => (
              <a href={`#/goal/${key}`} data-goal={key}>
                goal #{key}
              </a>
            )}
          />
        ) : null}
      </Section>
    </div>
  );
}

function CostTable({ caption, rows, label }: { caption: string; rows: Dict[]; label: (key: string) => ComponentChildren }) {
  return (
    <table class="cost">
      <caption>{caption}</caption>
      <tbody>
        {rows.map((c: Dict) => (
          <tr>
            <th scope="row">{label(c.key)}</th>
            <td>{fmtUsd(c.costUsd)}</td>
            <td class="muted">{c.tokens} tokens</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
