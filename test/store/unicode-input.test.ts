import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { validateBatch, type TaskInput } from "../../src/store/index.js";
import { openTestStore, type TestStore } from "../helpers/store.js";

/**
 * Strings that are not well-formed Unicode (a UTF-16 surrogate without its
 * pair) cannot be stored as they are: SQLite's TEXT is UTF-8, and the driver
 * replaces the lone half with U+FFFD, so the task would be stored altered. The
 * one input layer (src/store/input.ts, behind the CLI, plan files and MCP)
 * refuses them with the field and the index (issue 12, defect 8).
 */
const LONE_HIGH = "\ud800";
const LONE_LOW = "\udc00";

let t: TestStore;
beforeEach(async () => {
  t = await openTestStore();
});
afterEach(async () => t.close());

const cases: Array<{ field: string; task: TaskInput; message: string }> = [
  { field: "title", task: { persona: "worker", title: `ab${LONE_HIGH}c` }, message: "tasks[0].title: not well-formed Unicode (lone surrogate at index 2)" },
  { field: "a title ending in a high half", task: { persona: "worker", title: `abc${LONE_HIGH}` }, message: "tasks[0].title: not well-formed Unicode (lone surrogate at index 3)" },
  { field: "a title with the halves reversed", task: { persona: "worker", title: `x${LONE_LOW}${LONE_HIGH}` }, message: "tasks[0].title: not well-formed Unicode (lone surrogate at index 1)" },
  { field: "description", task: { persona: "worker", title: "T", description: `${LONE_LOW}` }, message: "tasks[0].description: not well-formed Unicode (lone surrogate at index 0)" },
  { field: "persona", task: { persona: `work${LONE_LOW}er`, title: "T" }, message: "tasks[0].persona: not well-formed Unicode (lone surrogate at index 4)" },
  { field: "ref", task: { ref: `r${LONE_HIGH}`, persona: "worker", title: "T" }, message: "tasks[0].ref: not well-formed Unicode (lone surrogate at index 1)" },
  { field: "idempotencyKey", task: { persona: "worker", title: "T", idempotencyKey: `k-${LONE_HIGH}` }, message: "tasks[0].idempotencyKey: not well-formed Unicode (lone surrogate at index 2)" },
  { field: "dependsOn", task: { persona: "worker", title: "T", dependsOn: [1, `a${LONE_LOW}`] }, message: "tasks[0].dependsOn[1]: not well-formed Unicode (lone surrogate at index 1)" },
  { field: "a payload string", task: { persona: "worker", title: "T", payload: { files: ["ok", `x${LONE_HIGH}`] } }, message: "tasks[0].payload.files[1]: not well-formed Unicode (lone surrogate at index 1)" },
  { field: "a payload key", task: { persona: "worker", title: "T", payload: { nested: { [`k${LONE_LOW}`]: 1 } } }, message: 'tasks[0].payload.nested: key "k\\udc00": not well-formed Unicode (lone surrogate at index 1)' },
];

describe("input strings that are not well-formed Unicode", () => {
  it.each(cases)("enqueue refuses a lone surrogate in $field, naming the field, and writes nothing", async ({ task, message }) => {
    const before = await t.rowCounts();
    const error = await t.store.tasks.enqueue({ tasks: [task], now: t.clock.now() }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RosterError);
    expect((error as RosterError).code).toBe("VALIDATION");
    expect((error as RosterError).message).toBe(message);
    expect(await t.rowCounts()).toEqual(before);
  });

  it("names the task by its index in a batch, and refuses the whole batch", async () => {
    const before = await t.rowCounts();
    const batch = [{ ref: "a", persona: "worker", title: "fine" }, { ref: "b", persona: "worker", title: `bad${LONE_HIGH}`, dependsOn: ["a"] }];
    await expect(t.store.tasks.enqueue({ tasks: batch, now: t.clock.now() })).rejects.toThrow(
      'tasks[1] (ref "b").title: not well-formed Unicode (lone surrogate at index 3)',
    );
    expect(await t.rowCounts()).toEqual(before);
  });

  it("validateBatch, the check the CLI, plan files and MCP share, refuses it before anything opens", () => {
    expect(() => validateBatch([{ persona: "worker", title: LONE_LOW }], 1024)).toThrow("tasks[0].title: not well-formed Unicode (lone surrogate at index 0)");
  });

  it("accepts surrogate pairs (astral characters) and stores them unaltered", async () => {
    const title = "ship it 🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢";
    const { ids } = await t.store.tasks.enqueue({ tasks: [{ persona: "worker", title, payload: { "🔑": "🚀" } }], now: t.clock.now() });
    const task = await t.store.tasks.get({ taskId: ids[0]! });
    expect(task.title).toBe(title);
    expect(task.payload).toEqual({ "🔑": "🚀" });
  });
});
