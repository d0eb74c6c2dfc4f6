import type { Json } from "../../store/types.js";
import type { AdapterTask } from "../types.js";

/**
 * The prompt an agent CLI receives: the persona's definition, then the task (title,
 * description, payload), the results of the tasks it depends on, where it works,
 * and, for a planner, the shape its answer must take. Plain markdown, the way a
 * person would brief the agent by hand.
 */

/** Longest rendering of one dependency's result, in characters; the rest is cut with a note. */
export const DEPENDENCY_RESULT_CHARS_MAX = 20_000;

export interface PromptWorkspace {
  path: string;
  branch: string;
  base: string;
}

export interface PromptInput {
  definition: string;
  task: AdapterTask;
  role: "worker" | "planner";
  workspace?: PromptWorkspace | null;
  /** The last attempt failed: why, whether its conversation is resumed, which files of its work were restored. */
  continuing?: { reason: string; session: boolean; files: string[] } | null;
}

export const PLANNER_INSTRUCTIONS = `## Your answer
You are planning, not doing. Finish your reply with one JSON object (you may put it in a \`\`\`json
fence) of this shape:

{"result": "<a short summary of the plan>",
 "tasks": [{"ref": "<short name>", "persona": "<persona id>", "title": "<title>",
            "description": "<what to do, in full>", "dependsOn": ["<ref of another task in this plan>"]}]}

\`ref\` names a task inside this plan; \`dependsOn\` lists refs of this plan (or ids of existing
tasks) whose results the task needs. Tasks without dependencies run in parallel.`;

export function buildPrompt(input: PromptInput): string {
  const { task } = input;
  const parts: string[] = [input.definition.trim(), "---", `# Task ${task.id}: ${task.title}`];
  if (task.attempt > 1) parts.push(`(This is attempt ${task.attempt} of ${task.maxAttempts}; an earlier attempt failed.)`);
  if (task.description.trim() !== "") parts.push(task.description.trim());
  if (task.payload !== null) parts.push(`## Input\n${fenced(task.payload)}`);
  if (task.dependencies.length > 0) {
    const deps = task.dependencies.map(
      (dep) => `### Task ${dep.id}: ${dep.title} (${dep.persona}, ${dep.status})\n${renderResult(dep.result)}`,
    );
    parts.push(`## Results of the tasks this one depends on\n\n${deps.join("\n\n")}`);
  }
  if (input.workspace) {
    const ws = input.workspace;
    parts.push(
      `## Workspace\nYou are in a git worktree of your own at ${ws.path}, on branch \`${ws.branch}\` (started from \`${ws.base}\`). ` +
        "Make your changes here and commit them on this branch; do not switch branches.",
    );
  }
  if (input.continuing) {
    const c = input.continuing;
    const work =
      c.files.length === 0
        ? ""
        : ` Its work is in your worktree: its commits are on your branch and its uncommitted changes are back, uncommitted (${c.files.slice(0, 20).join(", ")}${c.files.length > 20 ? `, and ${c.files.length - 20} more` : ""}).`;
    parts.push(
      `## Continuing
The previous attempt stopped: ${c.reason}.${c.session ? " This is its conversation, resumed." : ""}${work} Continue where it stopped; do not redo what is done.`,
    );
  }
  if (input.role === "planner") parts.push(PLANNER_INSTRUCTIONS);
  return `${parts.join("\n\n")}\n`;
}

/** Text results as they are; an agent's result object by its text and branch; anything else as JSON. */
function renderResult(result: Json | null): string {
  if (result === null) return "(no result)";
  let text: string;
  if (typeof result === "string") text = result;
  else if (isAgentResult(result)) {
    const branch = result.workspace !== undefined && result.workspace !== null && typeof result.workspace === "object" && !Array.isArray(result.workspace)
      ? result.workspace.branch
      : undefined;
    text = typeof branch === "string" ? `${result.text}\n\n(Its work is on branch \`${branch}\`.)` : result.text;
  } else text = fenced(result);
  return text.length > DEPENDENCY_RESULT_CHARS_MAX
    ? `${text.slice(0, DEPENDENCY_RESULT_CHARS_MAX)}\n[… ${text.length - DEPENDENCY_RESULT_CHARS_MAX} more characters cut]`
    : text;
}

function isAgentResult(value: Json): value is { text: string; workspace?: Json } & { [key: string]: Json } {
  return typeof value === "object" && value !== null && !Array.isArray(value) && typeof value.text === "string";
}

function fenced(value: Json): string {
  return `\`\`\`json\n${JSON.stringify(value, null, 2)}\n\`\`\``;
}
