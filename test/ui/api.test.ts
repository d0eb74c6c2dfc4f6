import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUiServer, type UiServer } from "../../src/ui/server.js";
import { openStore, type Store, type TaskState } from "../../src/store/index.js";
import { TEST_PERSONAS } from "../helpers/personas.js";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { Client } from "./api-client.js";

const GATE = {
  id: "gate",
  name: "Gate",
  definition: "# Gate\n\nA person approves the plan.",
  config: { id: "gate", name: "Gate", adapter: { kind: "human" }, concurrency: 1, leaseMs: 30_000, timeoutMs: 60_000, retry: { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } },
  sourcePath: null,
};

/** A GET with a Host header of our choosing (fetch may not set Host). */
function rawGet(url: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, url), { method: "GET", headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

async function fingerprint(store: Store): Promise<string> {
  const tasks = await store.tasks.list({ limit: 0 });
  const events = await Promise.all(tasks.map((t) => store.tasks.events({ taskId: t.id, limit: 0 })));
  return JSON.stringify([tasks.map((t) => [t.id, t.status, t.attempts, t.updatedAt]), events.map((e) => e.length)]);
}

describe("dashboard API on loopback without a token", () => {
  let t: TestStore;
  let server: UiServer;
  let c: Client;
  let failedId: number;
  let gateId: number;
  let pendingId: number;

  beforeAll(async () => {
    t = await openTestStore();
    await t.store.personas.sync({ personas: [...TEST_PERSONAS, GATE], now: t.clock.now() });
    const { ids } = await t.store.tasks.enqueue({
      tasks: [
        { ref: "a", persona: "worker", title: "will fail", maxAttempts: 1 },
        { persona: "reviewer", title: "after a", dependsOn: ["a"] },
        { persona: "gate", title: "approve the plan" },
        { persona: "worker", title: "stays pending", priority: -5 },
      ],
      now: t.clock.now(),
    });
    [failedId, , gateId, pendingId] = ids as [number, number, number, number];
    const [claimed] = await t.store.tasks.claim({ persona: "worker", agentId: "agent-1", limit: 1, now: t.clock.now() });
    expect(claimed!.id).toBe(failedId);
    await t.store.tasks.failIfLeased({ taskId: failedId, leaseToken: claimed!.leaseToken, error: { message: "boom", code: "ADAPTER_FAILED", retryable: false}, now: t.clock.now() });
    server = await startUiServer({ store: t.store, port: 0, clock: t.clock, user: "tester", publicDir: "/nonexistent-ui-public" });
    c = new Client(server.url);
    await c.login();
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it("binds 127.0.0.1 and answers the overview: counts, attention, running", async () => {
    expect(server.host).toBe("127.0.0.1");
    const r = await c.req("GET", "/api/overview");
    expect(r.status).toBe(200);
    expect(r.body.counts.worker).toEqual({ failed: 1, pending: 1 });
    expect(r.body.counts.gate.awaiting_approval).toBe(1);
    expect(r.body.counts.reviewer).toEqual({ blocked: 1 });
    expect(r.body.attention.failed.map((x: { id: number }) => x.id)).toEqual([failedId]);
    expect(r.body.attention.blocked).toHaveLength(1);
    expect(r.body.attention.parked.map((x: { id: number; status: TaskState }) => [x.id, x.status])).toEqual([[gateId, "awaiting_approval"]]);
    expect(r.body.cost.total.attempts).toBe(0);
    expect(r.body.throughput.buckets.reduce((s: number, b: { failed: number }) => s + b.failed, 0)).toBe(1);
  });

  it("pages and filters tasks on the server, newest first, with a total", async () => {
    const first = await c.req("GET", "/api/tasks?limit=2");
    expect(first.status).toBe(200);
    // (The overall total is left out: task_counts counts a task enqueued straight into an
    // approval gate as pending too, a store defect reported with issue 20.)
    expect((await c.req("GET", "/api/tasks?persona=worker")).body.total).toBe(2);
    expect(first.body.tasks.map((x: { id: number }) => x.id)).toEqual([pendingId, gateId]);
    const second = await c.req("GET", `/api/tasks?limit=2&before=${first.body.nextBefore}`);
    expect(second.body.tasks.map((x: { id: number }) => x.id)).toEqual([failedId + 1, failedId]);
    expect(second.body.nextBefore).toBeNull();
    const failed = await c.req("GET", "/api/tasks?status=failed,blocked&persona=worker");
    expect(failed.body.tasks.map((x: { id: number }) => x.id)).toEqual([failedId]);
    expect(failed.body.total).toBe(1);
    const q = await c.req("GET", "/api/tasks?q=PENDING");
    expect(q.body.tasks.map((x: { id: number }) => x.id)).toEqual([pendingId]);
  });

  it("answers a task's detail: attempts with agent and outcome, the trail, why, dependents", async () => {
    const r = await c.req("GET", `/api/tasks/${failedId}`);
    expect(r.status).toBe(200);
    expect(r.body.task.status).toBe("failed");
    expect(r.body.task.dependents.map((d: { status: string }) => d.status)).toEqual(["blocked"]);
    expect(r.body.attempts).toHaveLength(1);
    expect(r.body.attempts[0]).toMatchObject({ attempt: 1, agentId: "agent-1", outcome: "failed" });
    expect(r.body.task.events.map((e: { type: string }) => e.type)).toContain("task:failed");
    expect(r.body.why.reasons.map((x: { code: string }) => x.code)).toContain("failed");
    const graph = await c.req("GET", `/api/goals/${failedId + 1}/graph`);
    expect(graph.status).toBe(200);
    expect(graph.body.rootId).toBe(failedId + 1);
  });

  it("refuses bad reads with the field named", async () => {
    const cases: Array<[string, number, string]> = [
      ["/api/tasks?status=done", 400, "status"],
      ["/api/tasks?limit=0", 400, "limit"],
      ["/api/tasks?limit=abc", 400, "limit"],
      ["/api/tasks?before=-1", 400, "before"],
      ["/api/tasks/abc", 400, "id"],
      ["/api/tasks?persona=nope", 400, "persona"],
      ["/api/tasks?persona=workr&status=pending", 400, "persona"],
    ];
    for (const [path, status, field] of cases) {
      const r = await c.req("GET", path);
      expect([path, r.status, r.body.error.field]).toEqual([path, status, field]);
    }
    // An unknown persona is refused as `roster ls --persona` refuses it, with the closest known one.
    expect((await c.req("GET", "/api/tasks?persona=workr")).body.error).toMatchObject({ code: "PERSONA_NOT_FOUND", field: "persona", message: expect.stringContaining('did you mean "worker"') });
    expect((await c.req("GET", "/api/tasks/99999")).status).toBe(404);
    expect((await c.req("GET", "/api/tasks/99999")).body.error.code).toBe("TASK_NOT_FOUND");
    expect((await c.req("GET", "/api/nothing")).status).toBe(404);
    expect((await c.req("DELETE", "/api/tasks/1")).status).toBe(405);
  });

  it("refuses every bad action with a status and the field, and writes nothing", async () => {
    const before = await fingerprint(t.store);
    const cases: Array<[string, unknown, number, string | undefined]> = [
      [`/api/tasks/${gateId}/reject`, {}, 400, "reason"],
      [`/api/tasks/${gateId}/reject`, { reason: "" }, 400, "reason"],
      [`/api/tasks/${gateId}/approve`, { note: 5 }, 400, "note"],
      [`/api/tasks/${gateId}/approve`, { nope: 1 }, 400, "nope"],
      [`/api/tasks/${gateId}/answer`, { answer: "yes" }, 409, undefined],
      [`/api/tasks/${pendingId}/answer`, {}, 400, "answer"],
      [`/api/tasks/${pendingId}/explode`, {}, 404, undefined],
      [`/api/tasks/99999/retry`, {}, 404, "taskId"],
      [`/api/tasks/${pendingId}/retry`, {}, 409, undefined],
      [`/api/tasks`, { persona: "worker" }, 400, "title"],
      [`/api/tasks`, { persona: "nobody", title: "x" }, 400, "persona"],
      [`/api/tasks`, { persona: "worker", title: "x", priority: "high" }, 400, "priority"],
      [`/api/tasks`, { persona: "worker", title: "x", dependsOn: [99999] }, 400, "dependsOn"],
      [`/api/tasks`, [], 400, "body"],
      [`/api/plans`, { format: "toml", text: "x" }, 400, "format"],
      [`/api/plans`, { format: "yaml" }, 400, "text"],
      [`/api/plans`, { format: "yaml", text: "tasks:\n  - persona: worker\n    title: [unclosed" }, 400, "text"],
      [`/api/plans`, { format: "json", text: '{"tasks": [{"persona": "worker"}]}' }, 400, "tasks[0].title"],
      [`/api/plans`, { format: "yaml", text: "tasks:\n  - ref: a\n    persona: worker\n    title: A\n    dependsOn: [b]\n  - ref: b\n    persona: worker\n    title: B\n    dependsOn: [a]\n" }, 400, "dependsOn"],
    ];
    for (const [path, body, status, field] of cases) {
      const r = await c.req("POST", path, body);
      expect([path, JSON.stringify(body), r.status, r.body.error?.field]).toEqual([path, JSON.stringify(body), status, field]);
      expect(typeof r.body.error.message).toBe("string");
    }
    // The plan's messages are the ones `roster add --file` prints.
    const yamlError = await c.req("POST", "/api/plans", { format: "json", text: '{"tasks": [{"persona": "worker"}]}' });
    expect(yamlError.body.error.message).toMatch(/^plan: plan\.tasks\[0\]\.title: /);
    const notJson = await c.req("POST", `/api/tasks/${gateId}/approve`, "{nope");
    expect([notJson.status, notJson.body.error.field]).toEqual([400, "body"]);
    const wrongType = await c.req("POST", `/api/tasks/${gateId}/approve`, undefined, { "content-type": "text/plain" });
    expect(wrongType.status).toBe(415);
    expect(await fingerprint(t.store)).toBe(before);
  });

  it("refuses actions without the session's CSRF token, writing nothing", async () => {
    const before = await fingerprint(t.store);
    const noHeader = await c.req("POST", `/api/tasks/${failedId}/retry`, {}, { "x-roster-csrf": "" });
    expect([noHeader.status, noHeader.body.error.code]).toEqual([403, "CSRF"]);
    const other = new Client(server.url);
    await other.login();
    const crossed = await c.req("POST", `/api/tasks/${failedId}/retry`, {}, { "x-roster-csrf": other.csrf });
    expect(crossed.status).toBe(403);
    const noCookie = await fetch(new URL(`/api/tasks/${failedId}/retry`, server.url), { method: "POST", headers: { "content-type": "application/json", "x-roster-csrf": c.csrf }, body: "{}" });
    expect(noCookie.status).toBe(403);
    expect(await fingerprint(t.store)).toBe(before);
  });

  it("sets an HttpOnly SameSite=Strict session cookie", async () => {
    const res = await fetch(new URL("/api/session", server.url));
    expect(res.headers.get("set-cookie")).toMatch(/^roster_ui=[\w-]+; HttpOnly; SameSite=Strict; Path=\/$/);
  });

  it("refuses a foreign Host (DNS rebinding) and a foreign Origin", async () => {
    expect(await rawGet(server.url, "/api/overview", { host: "evil.example:80", cookie: c.cookie })).toBe(403);
    expect(await rawGet(server.url, "/", { host: "attacker.test" })).toBe(403);
    expect(await rawGet(server.url, "/api/overview", { host: `localhost:${server.port}`, cookie: c.cookie })).toBe(200);
    const origin = await c.req("POST", `/api/tasks/${failedId}/retry`, {}, { origin: "http://evil.example" });
    expect(origin.status).toBe(403);
    const ok = await c.req("GET", "/api/overview", undefined, { origin: server.url.replace(/\/$/, "") });
    expect(ok.status).toBe(200);
  });

  it("acts and records the dashboard's user in the audit trail", async () => {
    const retried = await c.req("POST", `/api/tasks/${failedId}/retry`, {});
    expect([retried.status, retried.body.status]).toEqual([200, "pending"]);
    const approved = await c.req("POST", `/api/tasks/${gateId}/approve`, { note: "looks good" });
    expect(approved.status).toBe(200);
    const cancelled = await c.req("POST", `/api/tasks/${pendingId}/cancel`, { reason: "not needed" });
    expect(cancelled.body.cancelled).toEqual([pendingId]);
    const added = await c.req("POST", "/api/tasks", { persona: "worker", title: "one more" });
    expect(added.status).toBe(200);
    const plan = await c.req("POST", "/api/plans", { format: "yaml", text: "tasks:\n  - ref: x\n    persona: worker\n    title: X\n  - persona: reviewer\n    title: Y\n    dependsOn: [x]\n" });
    expect([plan.status, plan.body.ids.length]).toEqual([200, 2]);
    const events = await t.store.tasks.events({ taskId: failedId });
    expect(events.find((e) => e.type === "task:retried")?.agentId ?? JSON.stringify(events.at(-1))).toContain("ui:tester");
    const gate = await t.store.tasks.get({ taskId: gateId });
    expect(gate.status).toBe("completed");
    expect(JSON.stringify(gate.events)).toContain("ui:tester");
    const cancelledTask = await t.store.tasks.get({ taskId: pendingId });
    expect(JSON.stringify(cancelledTask.events)).toContain("ui:tester");
    const newTask = await t.store.tasks.get({ taskId: added.body.id });
    expect(newTask.createdBy).toBe("ui:tester");
    // After the retry the count starts again at 1: the detail still shows both attempts.
    const [again] = await t.store.tasks.claim({ persona: "worker", agentId: "agent-2", limit: 1, now: t.clock.now() });
    expect(again!.id).toBe(failedId);
    const detail = await c.req("GET", `/api/tasks/${failedId}`);
    expect(detail.body.attempts.map((a: { attempt: number; agentId: string; outcome: string | null }) => [a.attempt, a.agentId, a.outcome])).toEqual([
      [1, "agent-1", "failed"],
      [1, "agent-2", null],
    ]);
  });

  it("pushes change notices over Server-Sent Events after a store write", async () => {
    const controller = new AbortController();
    const res = await fetch(new URL("/api/events", server.url), { headers: { cookie: c.cookie }, signal: controller.signal });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("event: hello")) text += decoder.decode((await reader.read()).value);
    const { ids } = await t.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "seen live" }], now: t.clock.now() });
    while (!text.includes("event: change")) text += decoder.decode((await reader.read()).value);
    const data = JSON.parse(/event: change\ndata: (.*)\n/.exec(text)![1]!);
    expect(data.kinds).toContain("task:enqueued");
    expect(data.tasks).toContain(ids[0]);
    controller.abort();
  });

  it("tells the page about another process's writes (watchExternalChanges confirmed by hasExternalChanges)", async () => {
    const controller = new AbortController();
    const res = await fetch(new URL("/api/events", server.url), { headers: { cookie: c.cookie }, signal: controller.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("event: hello")) text += decoder.decode((await reader.read()).value);
    // A second connection stands for another process: its writes emit no event in this one.
    const other = await openStore({ path: t.path });
    try {
      await other.tasks.enqueue({ tasks: [{ persona: "worker", title: "from elsewhere" }], now: t.clock.now() });
    } finally {
      await other.close();
    }
    while (!/"kinds":\[[^\]]*"external"/.test(text)) text += decoder.decode((await reader.read()).value);
    controller.abort();
  });

  it("says the front end is not built when its folder is missing", async () => {
    const r = await c.req("GET", "/");
    expect(r.status).toBe(503);
    expect(String(r.body)).toContain("npm run build");
  });
});

describe("dashboard API with a token", () => {
  let t: TestStore;
  let server: UiServer;
  const token = "s3cret-token-for-tests";

  beforeAll(async () => {
    t = await openTestStore();
    await t.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "t" }], now: t.clock.now() });
    server = await startUiServer({ store: t.store, port: 0, clock: t.clock, token, user: "ops", publicDir: "/nonexistent-ui-public" });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it("refuses to serve off loopback without a token, and a short token", async () => {
    await expect(startUiServer({ store: t.store, port: 0, host: "0.0.0.0" })).rejects.toMatchObject({ code: "CONFIG_INVALID", details: { field: "ui.token" } });
    await expect(startUiServer({ store: t.store, port: 0, token: "short" })).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await expect(startUiServer({ store: t.store, port: 70_000 })).rejects.toMatchObject({ details: { field: "ui.port" } });
  });

  it("answers 401 without the token, and to a wrong one", async () => {
    const c = new Client(server.url);
    expect((await c.req("GET", "/api/overview")).status).toBe(401);
    expect((await c.req("GET", "/api/session")).status).toBe(401);
    expect((await c.req("GET", "/api/events")).status).toBe(401);
    const wrong = new Client(server.url, { authorization: "Bearer nope-nope-nope" });
    expect((await wrong.req("GET", "/api/overview")).status).toBe(401);
    const badLogin = await c.req("POST", "/api/login", { token: "nope-nope-nope" });
    expect([badLogin.status, badLogin.body.error.field]).toEqual([401, "token"]);
    expect(badLogin.headers.get("set-cookie")).toBeNull();
    // The page itself holds no data: it loads and asks for the login.
    expect((await c.req("GET", "/")).status).toBe(503);
  });

  it("takes the bearer token for reads and actions (no CSRF header needed: a browser never adds it)", async () => {
    const c = new Client(server.url, { authorization: `Bearer ${token}` });
    expect((await c.req("GET", "/api/overview")).status).toBe(200);
    const r = await c.req("POST", "/api/tasks", { persona: "worker", title: "via bearer" });
    expect(r.status).toBe(200);
    expect((await t.store.tasks.get({ taskId: r.body.id })).createdBy).toBe("ui:ops");
  });

  it("logs in with the token: an HttpOnly cookie, then CSRF on every action", async () => {
    const c = new Client(server.url);
    const login = await c.req("POST", "/api/login", { token });
    expect(login.status).toBe(200);
    expect(login.headers.get("set-cookie")).toMatch(/HttpOnly; SameSite=Strict/);
    expect((await c.req("GET", "/api/overview")).status).toBe(200);
    const withoutCsrf = await c.req("POST", "/api/tasks", { persona: "worker", title: "no csrf" });
    expect(withoutCsrf.status).toBe(403);
    c.csrf = login.body.csrf;
    const withCsrf = await c.req("POST", "/api/tasks", { persona: "worker", title: "with csrf" });
    expect(withCsrf.status).toBe(200);
    const logout = await c.req("POST", "/api/logout", {});
    expect(logout.status).toBe(200);
    c.cookie = logout.headers.get("set-cookie")!.split(";")[0]!;
    expect((await c.req("GET", "/api/overview")).status).toBe(401);
  });

  it("bound off loopback, accepts its own address and IPs but not other names", async () => {
    const wide = await startUiServer({ store: t.store, port: 0, host: "0.0.0.0", token, publicDir: "/nonexistent-ui-public" });
    try {
      const url = `http://127.0.0.1:${wide.port}/`;
      const auth = { authorization: `Bearer ${token}` };
      expect(await rawGet(url, "/api/overview", { ...auth, host: `10.1.2.3:${wide.port}` })).toBe(200);
      expect(await rawGet(url, "/api/overview", { ...auth, host: `rebind.example:${wide.port}` })).toBe(403);
      expect(await rawGet(url, "/api/overview", { host: `10.1.2.3:${wide.port}` })).toBe(401);
    } finally {
      await wide.close();
    }
  });
});

