// Small parts every view uses: a state badge, a link to a task, a time, JSON, a titled card, a loading line.
import type { ComponentChildren } from "preact";
import { fmtTime } from "../format";

export function Badge({ state }: { state: string }) {
  return <span class={`badge s-${state}`}>{state.replace("_", " ")}</span>;
}
export function TaskLink({ id, title }: { id: number; title?: string }) {
  return (
    <a href={`#/task/${id}`}>
      #{id}
      {title !== undefined ? ` ${title}` : ""}
    </a>
  );
}
/** A time in the reader's zone, its exact instant in `datetime`; "—" when there is none. */
export function Time({ ms }: { ms: number | null | undefined }) {
  if (ms === null || ms === undefined) return <>—</>;
  return <time dateTime={new Date(ms).toISOString()}>{fmtTime(ms)}</time>;
}
export function Json({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span class="muted">none</span>;
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return <pre class="json">{text.length > 20000 ? `${text.slice(0, 20000)}\n… (${text.length} characters)` : text}</pre>;
}
export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}
export function Loading({ error }: { error: string | null }) {
  return error !== null ? <p class="error" role="alert">{error}</p> : <p class="muted">Loading…</p>;
}
