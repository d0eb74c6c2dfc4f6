// The chaos suite's `tree` task: a shell leader with two grandchildren. It reads
// the task from stdin, starts two node processes that sleep payload.ms and hold
// the leader's stdout/stderr (as an agent CLI's helpers do), waits for both and
// exits 0. Every step is a line in CHAOS_TREE_LOG with the true time, so the
// runner can kill the leader with SIGKILL while it runs and the checks can see
// whether its grandchildren died with it:
//   start <task> <attempt> <leader pid> <ms>
//   gcstart <task> <attempt> <pid> <ms>   gcdone <task> <attempt> <pid> <ms>
//   done <task> <attempt> <leader pid> <ms>
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";

const log = (line) => {
  if (process.env.CHAOS_TREE_LOG) appendFileSync(process.env.CHAOS_TREE_LOG, `${line} ${Date.now()}\n`);
};
let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const task = JSON.parse(input);
const ms = typeof task.payload?.ms === "number" ? task.payload.ms : 1_000;
log(`start ${task.id} ${task.attempt} ${process.pid}`);
const grandchild = `
const { appendFileSync } = require("node:fs");
const line = (w) => process.env.CHAOS_TREE_LOG && appendFileSync(process.env.CHAOS_TREE_LOG, w + " ${task.id} ${task.attempt} " + process.pid + " " + Date.now() + "\\n");
line("gcstart");
setTimeout(() => line("gcdone"), ${ms});
`;
const children = [0, 1].map(() => spawn(process.execPath, ["-e", grandchild], { stdio: ["ignore", "inherit", "inherit"] }));
await Promise.all(children.map((c) => new Promise((resolve) => c.on("exit", resolve))));
log(`done ${task.id} ${task.attempt} ${process.pid}`);
process.stdout.write(JSON.stringify({ tree: true, id: task.id, attempt: task.attempt }) + "\n");
