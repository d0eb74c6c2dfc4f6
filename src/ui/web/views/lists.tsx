// The Agents, Personas (definitions rendered) and Schedules pages.
import { api, type Dict } from "../client";
import { AgentTable } from "../components/agent-table";
import { Loading, Section, Time } from "../components/common";
import { Markdown } from "../components/markdown";
import { useLive } from "../hooks";

export function AgentsPage() {
  const { data, error } = useLive(() => api("agents?all=1"), [], (c) => c.kinds.some((k: string) => k.startsWith("agent:") || k === "external"));
  if (data === null) return <Loading error={error} />;
  return (
    <Section title="Agents" id="h-agents-page">
      <AgentTable agents={data.agents} />
    </Section>
  );
}

export function PersonasPage() {
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

export function SchedulesPage() {
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
              <td>{s.pausedAt !== null ? "—" : s.nextFireAt === null ? "no next fire" : <Time ms={s.nextFireAt} />}</td>
              <td>
                <Time ms={s.lastFireAt} />
              </td>
              <td>{s.missed}</td>
              <td>{s.state}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
