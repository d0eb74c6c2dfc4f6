import type { Command } from "commander";
import { register as add } from "./add.js";
import { register as agents } from "./agents.js";
import { register as answer } from "./answer.js";
import { register as approve } from "./approve.js";
import { register as budget } from "./budget.js";
import { register as cancel } from "./cancel.js";
import { register as cost } from "./cost.js";
import { register as db } from "./db.js";
import { register as events } from "./events.js";
import { register as gates } from "./gates.js";
import { register as init } from "./init.js";
import { register as ls } from "./ls.js";
import { register as mcp } from "./mcp.js";
import { register as personas } from "./personas.js";
import { register as prune } from "./prune.js";
import { register as retry } from "./retry.js";
import { register as run } from "./run.js";
import { register as schedule } from "./schedule.js";
import { register as show } from "./show.js";
import { register as start } from "./start.js";
import { register as status } from "./status.js";
import { register as ui } from "./ui.js";
import { register as why } from "./why.js";

/** Every command registers itself on the program; one file per command. */
export type RegisterCommand = (program: Command) => void;

/** In the order `roster --help` lists them. (status and mcp are added by their owners.) */
export const commands: RegisterCommand[] = [init, start, status, add, run, ls, show, why, events, retry, cancel, approve, answer, schedule, cost, budget, gates, agents, personas, prune, db, mcp, ui];
