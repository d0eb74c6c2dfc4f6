import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startMcpHttp, type McpHttpServer } from "../../src/mcp/http.js";
import { openStore, type Store } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { call, requireBuild, spawnMcpClient, writePersona, type SpawnedClient } from "./helpers.js";
import { syncPersonaFolder } from "../helpers/personas.js";

type Data = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Issue 18's acceptance: an agent loop written only from what the server says of
 * itself (tool names and the instructions), through the SDK client, over stdio
 * and over HTTP. It completes a goal with a fan-in, releases a task it cannot do
 * (skip) and sees another agent take it, survives a lost answer by calling
 * complete_task again, and stops when get_progress says settled, also after a
 * permanent failure.
 */
interface Harness {
  open(name: string): Promise<Client>;
}

/** The worker loop: claim, decide, finish; until the goal has settled. */
async function work(agent: Client, planner: Client, goalId: number, persona: string, decide: (task: Data) => "skip" | "fail" | Data): Promise<number[]> {
  const done: number[] = [];
  for (let round = 0; round < 200; round++) {
    if ((await call(planner, "get_progress", { rootId: goalId })).settled) return done;
    const claim = await call(agent, "claim_task", { persona, waitMs: 200 });
    if (claim.task === null) continue;
    const verdict = decide(claim.task);
    if (verdict === "skip") await call(agent, "release_task", { taskId: claim.task.id, leaseToken: claim.leaseToken, skip: true });
    else if (verdict === "fail") await call(agent, "fail_task", { taskId: claim.task.id, leaseToken: claim.leaseToken, error: "cannot be done", retryable: false });
    else {
      await call(agent, "complete_task", { taskId: claim.task.id, leaseToken: claim.leaseToken, result: verdict });
      done.push(claim.task.id);
    }
  }
  throw new Error("the loop never saw settled");
}

function scenario(harness: () => Harness): void {
  it("completes a goal with a fan-in, hands on a skipped task, survives a lost answer, and stops at settled after a failure", async () => {
    const h = harness();
    const planner = await h.open("planner");
    const one = await h.open("worker-one");
    const two = await h.open("worker-two");
    const reviewer = await h.open("reviewer");

    // What the loop is written from: the server's own words.
    const instructions = planner.getInstructions() ?? "";
    for (const word of ["claim_task", "heartbeat", "complete_task", "release_task", "skip", "get_progress", "settled", "LEASE_LOST"]) expect(instructions).toContain(word);

    const goal = await call(planner, "create_goal", {
      goal: { persona: "reviewer", title: "Ship the release", description: "Everything below done and checked." },
      tasks: [
        { ref: "odd", persona: "worker", title: "Sign the binaries", priority: 10 },
        { ref: "a", persona: "worker", title: "Build" },
        { ref: "b", persona: "worker", title: "Test" },
        { ref: "c", persona: "worker", title: "Document" },
        { ref: "d", persona: "reviewer", title: "Review all three", dependsOn: ["a", "b", "c"] },
      ],
    });
    const goalId = goal.goalId as number;
    // The goal is not claimable while its plan runs.
    expect((await call(planner, "get_task", { taskId: goalId })).task.status).toBe("waiting");

    // Worker one cannot sign: it skips; its next claim is other work, with the goal's context.
    const first = await call(one, "claim_task", { persona: "worker" });
    expect(first.task.id).toBe(goal.refs.odd);
    expect(first.task).toMatchObject({ rootId: goalId, parent: { id: goalId, title: "Ship the release" } });
    await call(one, "release_task", { taskId: first.task.id, leaseToken: first.leaseToken, skip: true, reason: "no signing key" });
    const next = await call(one, "claim_task", { persona: "worker" });
    expect(next.task.id).not.toBe(goal.refs.odd);
    // A lost answer: the same complete_task again says it is already done, with the result recorded.
    await call(one, "complete_task", { taskId: next.task.id, leaseToken: next.leaseToken, result: { built: next.task.title } });
    const again = await call(one, "complete_task", { taskId: next.task.id, leaseToken: next.leaseToken, result: { built: "again" } });
    expect(again).toMatchObject({ status: "completed", alreadyCompleted: true, result: { built: next.task.title } });

    // Worker two takes the skipped task; worker one sees who did.
    const taken = await call(two, "claim_task", { persona: "worker" });
    expect(taken.task.id).toBe(goal.refs.odd);
    const seen = await call(one, "read_task", { taskId: goal.refs.odd });
    const claims = seen.task.trail.filter((e: Data) => e.type === "task:claimed").map((e: Data) => e.agentId);
    expect(claims).toHaveLength(2);
    expect(claims[0]).not.toBe(claims[1]);
    await call(two, "complete_task", { taskId: taken.task.id, leaseToken: taken.leaseToken, result: { signed: true } });

    // The rest runs in loops that stop on settled; the reviewer's fan-in claim carries three results.
    let fanIn: Data | null = null;
    await Promise.all([
      work(one, planner, goalId, "worker", (t) => ({ did: t.title })),
      work(two, planner, goalId, "worker", (t) => ({ did: t.title })),
      work(reviewer, planner, goalId, "reviewer", (t) => {
        if (t.id === goal.refs.d) fanIn = t;
        return { reviewed: t.dependencies.length };
      }),
    ]);
    expect(fanIn!.dependencies.map((d: Data) => d.status)).toEqual(["completed", "completed", "completed"]);
    const progress = await call(planner, "get_progress", { rootId: goalId });
    expect(progress).toMatchObject({ settled: true, done: true, total: 6 });
    expect(progress.needsAttention).toEqual({});

    // A goal whose task fails for good settles too, and says what needs attention.
    const doomed = await call(planner, "create_goal", {
      goal: { persona: "reviewer", title: "Impossible goal" },
      tasks: [
        { ref: "x", persona: "worker", title: "Impossible step" },
        { ref: "y", persona: "worker", title: "After it", dependsOn: ["x"] },
      ],
    });
    await work(one, planner, doomed.goalId, "worker", () => "fail");
    const failed = await call(planner, "get_progress", { rootId: doomed.goalId });
    expect(failed).toMatchObject({ settled: true, done: false });
    expect(failed.needsAttention.failed.ids).toEqual([doomed.refs.x]);
    expect(failed.needsAttention.blocked.ids.sort()).toEqual([doomed.goalId, doomed.refs.y].sort());
  });
}

describe("an agent loop written from tools/list and the instructions", () => {
  let temp: TempDir;
  let store: Store;
  const closers: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    temp = makeTempDir("roster-mcp-loop-");
    const personasDir = temp.path("personas");
    writePersona(personasDir, { id: "worker", leaseMs: 30_000, maxAttempts: 3 });
    writePersona(personasDir, { id: "reviewer", leaseMs: 30_000, maxAttempts: 3 });
    store = await openStore({ path: temp.path("roster.db") });
    await syncPersonaFolder(store, personasDir);
  });

  afterEach(async () => {
    await Promise.allSettled(closers.splice(0).map((close) => close()));
    await store.close();
    temp.cleanup();
  });

  describe("over stdio (roster mcp, one process per agent)", () => {
    scenario(() => ({
      open: async (name) => {
        requireBuild();
        const spawned: SpawnedClient = await spawnMcpClient({ db: temp.path("roster.db"), profile: "all", name });
        closers.push(() => spawned.close());
        return spawned.client;
      },
    }));
  });

  describe("over HTTP (one server, a session per agent)", () => {
    let http: McpHttpServer | null = null;
    scenario(() => ({
      open: async (name) => {
        http ??= await startMcpHttp({ store, port: 0 });
        const server = http;
        if (closers.length === 0) closers.push(async () => {
          await server.close();
          http = null;
        });
        const client = new Client({ name, version: "0.0.0" });
        await client.connect(new StreamableHTTPClientTransport(new URL(server.url)));
        closers.unshift(() => client.close());
        return client;
      },
    }));
  });
});
