// Small parts every view uses: a state badge, a link to a task, JSON, a titled card, a loading line.
import type { ComponentChildren } from "preact";

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
