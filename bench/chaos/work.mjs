// The chaos suite's `shell` task: a real process the shell adapter spawns with the
// task as JSON on stdin. It waits payload.ms, appends "<task id> <attempt>" to the
// file named by CHAOS_SHELL_LOG (so the runner can count executions: at least once
// per completion, more when a kill interrupted one), and prints a JSON result.
import { appendFileSync } from "node:fs";

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const task = JSON.parse(input);
const ms = typeof task.payload?.ms === "number" ? task.payload.ms : 0;
await new Promise((resolve) => setTimeout(resolve, ms));
if (process.env.CHAOS_SHELL_LOG) appendFileSync(process.env.CHAOS_SHELL_LOG, `${task.id} ${task.attempt}\n`);
process.stdout.write(JSON.stringify({ shell: true, id: task.id, attempt: task.attempt, env: process.env.ROSTER_TASK_ID === String(task.id) }) + "\n");
