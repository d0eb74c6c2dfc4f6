// The dashboard's front end: preact, hash routes, one EventSource for live change
// notices (each page refetches its own view when told something changed), dagre for
// the goal graph. Served by src/ui/server.ts; the API is src/ui/api.ts. This file is the
// shell (login, header, routing); the pages are views/*, their parts components/*.
import { render, type ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, sessionUser, setSession, type ApiError, type Dict } from "./client";
import { useLiveState, useRoute } from "./hooks";
import { connectLive } from "./live";
import { AddPage } from "./views/add";
import { GoalPage } from "./views/goal";
import { AgentsPage, PersonasPage, SchedulesPage } from "./views/lists";
import { Overview } from "./views/overview";
import { TaskPage } from "./views/task";
import { Tasks } from "./views/tasks";
import "./style.css";

function Login({ onLogin }: { onLogin: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = String(new FormData(e.target as HTMLFormElement).get("token") ?? "");
    try {
      const r = await api<Dict>("login", { method: "POST", body: { token } });
      setSession({ csrf: r.csrf, user: r.user });
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
  const liveState = useLiveState();
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
        setSession({ csrf: s.csrf, user: s.user });
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
        <span class="muted">{sessionUser()}</span>
      </header>
      <main id="main" tabIndex={-1}>
        {body}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
