/**
 * The dashboard API's routes: reads (GET) and actions (POST) mapped onto src/ui/api.ts.
 * Access checks have passed before these run (src/ui/server.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { TASK_ACTIONS, addPlan, addTask, taskAction, type TaskAction } from "./actions.js";
import { UiError, goalGraph, listTasks, overview, parseId, taskDetail, type ApiContext } from "./api.js";
import { sendJson } from "./http.js";
import type { ChangeFeed } from "./live.js";
import type { ScheduleRecord } from "../store/index.js";
import { scheduleState } from "../store/schedules.js";

export async function routeRead(api: ApiContext, feed: ChangeFeed, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { store } = api;
  const path = url.pathname;
  const parts = path.split("/").filter((p) => p !== ""); // ["api", ...]
  if (path === "/api/events") return feed.open(req, res);
  if (path === "/api/overview") return sendJson(res, 200, await overview(api));
  if (path === "/api/tasks") return sendJson(res, 200, await listTasks(api, url.searchParams));
  if (parts[1] === "tasks" && parts.length === 3) return sendJson(res, 200, await taskDetail(api, parseId(parts[2]!)));
  if (parts[1] === "goals" && parts.length === 4 && parts[3] === "graph") return sendJson(res, 200, await goalGraph(api, parseId(parts[2]!)));
  if (path === "/api/agents") return sendJson(res, 200, { agents: await store.agents.list({ includeInactive: url.searchParams.get("all") === "1" }) });
  if (path === "/api/personas") return sendJson(res, 200, { personas: await store.personas.list({ includeRetired: true }) });
  if (path === "/api/schedules") return sendJson(res, 200, { schedules: await schedulesWithState(api) });
  throw new UiError(404, "NOT_FOUND", `no such endpoint: GET ${path}`);
}

/** The schedules, each with `state` as `schedule ls` says it (scheduleState: paused, and why). */
async function schedulesWithState({ store }: ApiContext): Promise<Array<ScheduleRecord & { state: string }>> {
  const [schedules, personas] = await Promise.all([store.schedules.list(), store.personas.list({ includeRetired: true })]);
  const byId = new Map(personas.map((p) => [p.id, p]));
  return schedules.map((s) => ({ ...s, state: scheduleState(s, byId.get(s.task.persona)) }));
}

export async function routeAction(api: ApiContext, path: string, body: unknown): Promise<unknown> {
  const parts = path.split("/").filter((p) => p !== "");
  if (path === "/api/tasks") return addTask(api, body);
  if (path === "/api/plans") return addPlan(api, body);
  if (parts[1] === "tasks" && parts.length === 4) {
    const action = parts[3]!;
    if (!(TASK_ACTIONS as readonly string[]).includes(action)) throw new UiError(404, "NOT_FOUND", `no such action: ${action} (${TASK_ACTIONS.join(", ")})`);
    return taskAction(api, parseId(parts[2]!), action as TaskAction, body);
  }
  throw new UiError(404, "NOT_FOUND", `no such endpoint: POST ${path}`);
}
