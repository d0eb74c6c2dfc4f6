import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { duration, eventData, leaseText, localTime, oneLine, preview, statusText, table, write } from "../format.js";
import { printJson } from "../output.js";
import { formatTokens, formatUsd } from "./cost.js";
import { addDbOption, addJsonOption, configFrom, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";

/** Events shown by `roster show` (the latest ones); `roster events ID` lists them all. */
export const SHOW_EVENT_LIMIT = 20;

/** `roster show ID`: one task with its dependencies, dependents, children and latest events. */
export function register(program: Command): void {
  const command = program.command("show").description("show a task: its state, dependencies, dependents, children and latest events").argument("<id>", "task id");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (rawId: string, options: DbOptions & JsonOptions) => {
    const taskId = parseTaskId(rawId);
    const config = configFrom(options);
    const { task, usage } = await withStore(config, "existing", async (store) => ({
      task: await store.tasks.get({ taskId, eventLimit: SHOW_EVENT_LIMIT }),
      usage: await store.economics.usageOf({ taskId }),
    }));
    if (options.json) {
      printJson({ ...task, usage });
      return;
    }
    const now = systemClock.now();
    const lines: string[] = [
      `task ${task.id}: ${oneLine(task.title, 200)}`,
      `  persona      ${task.persona}`,
      `  status       ${statusText(task, now)}${task.progress !== null && task.status === "in_progress" ? ` (${Math.round(task.progress * 100)}% ${task.progressMessage ?? ""})`.trimEnd() : ""}`,
      `  attempts     ${task.attempts}/${task.maxAttempts}`,
      `  priority     ${task.priority}`,
      `  created      ${localTime(task.createdAt)}${task.createdBy === null ? "" : ` by ${task.createdBy}`}`,
    ];
    if (task.parentId !== null) lines.push(`  parent       ${task.parentId}`);
    if ((task.status === "pending" || task.status === "waiting") && task.runAt !== null && task.runAt > now) {
      lines.push(`  run at       ${localTime(task.runAt)} (in ${duration(task.runAt - now)})`);
    }
    if (task.assignedAgentId !== null) {
      const lease = leaseText(task);
      lines.push(`  agent        ${task.assignedAgentId}${lease === "" ? "" : ` (lease ${lease})`}`);
    }
    if (task.finishedAt !== null) lines.push(`  finished     ${localTime(task.finishedAt)}`);
    if (task.description !== "") lines.push(`  description  ${oneLine(task.description, 200)}`);
    if (task.payload !== null) lines.push(`  payload      ${preview(task.payload, 200)}`);
    if (task.result !== null) lines.push(`  result       ${preview(task.result, 200)}`);
    if (task.error !== null) {
      const label = task.status === "completed" ? "last error " : "error      ";
      lines.push(`  ${label}  ${task.error.code}: ${oneLine(task.error.message, 200)}`);
    }
    write(lines.join("\n"));
    const related = (label: string, items: Array<{ id: number; title: string; persona: string; status: string }>): void => {
      if (items.length === 0) return;
      write(`\n${label}\n${table(["ID", "PERSONA", "STATUS", "TITLE"], items.map((d) => [d.id, d.persona, d.status, preview(d.title, 60)]))}`);
    };
    related("depends on", task.dependencies);
    related("dependents", task.dependents);
    related("children", task.children);
    if (usage.length > 0) {
      const spent = usage.reduce((sum, u) => sum + (u.costUsd ?? 0), 0);
      write(
        `\nusage per attempt (${formatUsd(spent)} in all)\n${table(
          ["ATTEMPT", "OUTCOME", "MODEL", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "TURNS", "DURATION", "USD"],
          usage.map((u) => [
            u.attempt,
            u.outcome,
            u.model ?? "-",
            formatTokens(u.inputTokens),
            formatTokens(u.outputTokens),
            formatTokens(u.cacheReadTokens),
            formatTokens(u.cacheWriteTokens),
            u.turns ?? "-",
            u.durationMs === null ? "-" : duration(u.durationMs),
            u.costUsd === null ? "unpriced" : `${formatUsd(u.costUsd)}${u.costSource === "reported" ? "" : " (priced)"}`,
          ]),
          { whole: [9] },
        )}`,
      );
    }
    if (task.events.length > 0) {
      write(
        `\nlatest events\n${table(
          ["AT", "TYPE", "ATTEMPT", "AGENT", "DATA"],
          task.events.map((e) => [localTime(e.at), e.type, e.attempt, e.agentId, eventData(e.data)]),
          { whole: [4] },
        )}`,
      );
    }
  });
}
