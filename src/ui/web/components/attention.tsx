// The overview's "Needs attention": tasks parked for a person, failed and blocked tasks,
// and the gates that hold ready work back (docs/economics.md): personas that may not
// claim, paused provider accounts, open breakers, spent budgets, full concurrency keys.
import type { Dict } from "../client";
import { fmtUsd } from "../format";
import { Badge, Section, TaskLink, Time } from "./common";

/** "$0.5000 of $0.5000, 1200 of 1000 tokens": whichever limits the budget has. */
function spentOf(b: Dict): string {
  const parts: string[] = [];
  if (b.maxCostUsd !== null) parts.push(`${fmtUsd(b.spentUsd)} of ${fmtUsd(b.maxCostUsd)}`);
  if (b.maxTokens !== null) parts.push(`${b.spentTokens} of ${b.maxTokens} tokens`);
  return parts.join(", ");
}

function BudgetScope({ b }: { b: Dict }) {
  if (b.scope === "goal") return <>goal <a href={`#/goal/${b.key}`}>#{b.key}</a></>;
  if (b.scope === "task") return <>task <TaskLink id={Number(b.key)} /></>;
  if (b.scope === "persona") return <>persona {b.key}{b.window !== "total" ? ` (per ${b.window})` : ""}</>;
  return <>global{b.window !== "total" ? ` (per ${b.window})` : ""}</>;
}

export function Attention({ a }: { a: Dict }) {
  const count = a.failed.length + a.blocked.length + a.parked.length + a.gated.length + a.pauses.length + a.breakers.length + a.budgets.length + a.keys.length;
  return (
    <Section title={`Needs attention (${count})`} id="h-attention">
      {count === 0 ? <p class="muted">Nothing needs you.</p> : null}
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
          <li data-gate="persona">
            <span class="badge s-gated">paused</span> persona <a href="#/personas">{g.persona}</a>: {g.reasons.map((r: Dict) => r.code).join(", ")}
            {g.until !== null ? (
              <>
                {" "}
                until <Time ms={g.until} />
              </>
            ) : null}
          </li>
        ))}
        {a.pauses.map((p: Dict) => (
          <li data-gate="provider">
            <span class="badge s-gated">provider paused</span> <strong>{p.provider}</strong>: {p.reason}{" "}
            {p.until !== null ? (
              <>
                until <Time ms={p.until} />
              </>
            ) : (
              "until resumed (roster provider resume)"
            )}
            {p.taskId !== null ? (
              <>
                {" "}
                · hit by <TaskLink id={p.taskId} />
              </>
            ) : null}
          </li>
        ))}
        {a.breakers.map((b: Dict) => (
          <li data-gate="breaker">
            <span class="badge s-gated">breaker {b.state}</span> <strong>{b.persona}</strong> after {b.consecutiveFailures} failures
            {b.state === "open" && b.openUntil !== null ? (
              <>
                , open until <Time ms={b.openUntil} />
              </>
            ) : null}
            {b.probeTaskId !== null ? (
              <>
                , probe <TaskLink id={b.probeTaskId} />
              </>
            ) : null}
          </li>
        ))}
        {a.budgets.map((b: Dict) => (
          <li data-gate="budget">
            <span class="badge s-gated">budget spent</span> <BudgetScope b={b} />: {spentOf(b)}
          </li>
        ))}
        {a.keys.map((k: Dict) => (
          <li data-gate="key">
            <span class="badge s-gated">key full</span> <code>{k.key}</code>: {k.running} of {k.limit} running (
            {k.holders.map((id: number, i: number) => (
              <>
                {i > 0 ? ", " : ""}
                <TaskLink id={id} />
              </>
            ))}
            ), {k.pending} pending
          </li>
        ))}
      </ul>
    </Section>
  );
}
