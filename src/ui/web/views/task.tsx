// One task: its fields, actions (retry, cancel, approve, reject, answer), why it is not
// running, payload, result, links, attempts with usage, requests to a person, audit trail.
import { useState } from "preact/hooks";
import { api, type Dict } from "../client";
import { Badge, Json, Loading, Section, TaskLink } from "../components/common";
import { fmtTime, fmtUsd } from "../format";
import { useLive, useProgress } from "../hooks";

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

export function TaskPage({ id }: { id: number }) {
  const { data, error, reload } = useLive(() => api(`tasks/${id}`), [id], (c) => c.tasks === null || c.tasks.length === 0 || c.tasks.includes(id) || c.kinds.includes("external"));
  const progress = useProgress();
  if (data === null) return <Loading error={error} />;
  const t = data.task;
  const p = progress.get(id);
  // The open request of a parked task, in full (an approval of a plan shows the whole plan).
  const open: Dict | undefined = t.status === "awaiting_approval" || t.status === "awaiting_input" ? data.requests.findLast((r: Dict) => r.outcome === null) : undefined;
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
        {open !== undefined ? (
          <blockquote class="question" aria-label={open.kind === "input" ? "question" : "to approve"}>
            {open.question}
          </blockquote>
        ) : null}
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
          {t.leaseExpiresAt !== null && t.leaseMs !== null ? (
            <>
              {/* leaseExpiresAt is a renewal stamp (the last renewal plus the lease), not a deadline: docs/ARCHITECTURE.md, "Liveness". */}
              <dt>lease</dt>
              <dd data-lease>
                last renewed {fmtTime(t.leaseExpiresAt - t.leaseMs)}; reaped after {Math.round(t.leaseMs / 1000)} s without a renewal
              </dd>
            </>
          ) : null}
          <dt>cost</dt>
          <dd data-cost="task">
            {fmtUsd(data.cost.costUsd)} · {data.cost.tokens} tokens over {data.cost.attempts} attempts{data.cost.unpriced > 0 ? ` (${data.cost.unpriced} unpriced)` : ""}
          </dd>
          {t.rootId !== t.id || t.children.length > 0 ? (
            <>
              <dt>goal cost</dt>
              <dd data-cost="goal">
                <a href={`#/goal/${t.rootId}`}>goal #{t.rootId}</a>: {fmtUsd(data.goalCost.costUsd)} · {data.goalCost.tokens} tokens over {data.goalCost.attempts} attempts
              </dd>
            </>
          ) : null}
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
