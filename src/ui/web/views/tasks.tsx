// The task list: filters by state, persona, title and goal, paged on the server behind a cursor.
import { useEffect, useState } from "preact/hooks";
import { api, type Dict } from "../client";
import { Badge, Loading, Section, TaskLink } from "../components/common";
import { STATES, fmtAgo } from "../format";
import { useLive } from "../hooks";

export function Tasks({ query }: { query: URLSearchParams }) {
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
