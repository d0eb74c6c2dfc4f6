import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { openStore, type TaskRecord } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { call, spawnMcpClient, type SpawnedClient } from "../mcp/helpers.js";
import { makeTemplate, roster, rosterJson, tableCounts, type Template } from "./helpers.js";

/**
 * Bad input (docs/ARCHITECTURE.md rule 11), one table per way in: the command line, plan files,
 * persona files and config (flags and environment variables) through the built
 * CLI, and MCP tool calls through `roster mcp` over stdio with the SDK's Client.
 * Each case checks the message names what and where, and that nothing was
 * written. CLI cases: one line on stderr, exit 2, against one shared database
 * holding a pending task (1) and a cancelled one (2); after each case every
 * table's row count is what it was (each transition also writes an event row,
 * so an update would show too). MCP cases: an isError result, and no commit at
 * all on the database (PRAGMA data_version) besides the row counts.
 */
let template: Template;
let files: TempDir;
let db: string;
let baseline: Record<string, number>;
/** A port another program holds, for `roster start` to be refused (src/http-listen.ts). */
let held: Server;
const heldPort = (): string => String((held.address() as AddressInfo).port);

beforeAll(async () => {
  held = createServer();
  await new Promise<void>((resolve) => held.listen(0, "127.0.0.1", resolve));
  template = await makeTemplate();
  db = template.copy().db;
  const store = await openStore({ path: db });
  await store.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "pending" }, { persona: "reviewer", title: "cancelled" }], now: Date.now() });
  await store.tasks.cancel({ taskId: 2, now: Date.now() });
  await store.close();
  baseline = await tableCounts(db);

  files = makeTempDir("roster-cli-bad-");
  const plan = (name: string, text: string) => writeFileSync(files.path(name), text);
  plan("cycle.json", JSON.stringify({ tasks: [{ ref: "a", persona: "reviewer", title: "A", dependsOn: ["b"] }, { ref: "b", persona: "reviewer", title: "B", dependsOn: ["a"] }] }));
  plan("self.yaml", "tasks:\n  - ref: a\n    persona: reviewer\n    title: A\n    dependsOn: [a]\n");
  plan("unknown-ref.json", JSON.stringify({ tasks: [{ ref: "a", persona: "reviewer", title: "A", dependsOn: ["zz"] }] }));
  plan("ghost.json", JSON.stringify({ tasks: [{ ref: "ok", persona: "reviewer", title: "fine" }, { ref: "g", persona: "ghost", title: "G" }] }));
  plan("syntax.json", '{"tasks": [\n  {"persona": "reviewer", "title": "A",}\n]}\n');
  plan("syntax.yaml", "tasks:\n  - persona: reviewer\n    title: A\n   dependsOn: [1\n");
  plan("empty.json", JSON.stringify({ tasks: [] }));
  plan("extra-field.yaml", "tasks:\n  - persona: reviewer\n    title: A\n    owner: me\n");
  plan("plan.txt", "tasks: []\n");
  plan("schedules-cron.yaml", 'schedules:\n  - id: a\n    cron: "61 * * * *"\n    task: { persona: reviewer, title: T }\n');
  plan("schedules-id.yaml", 'schedules:\n  - id: Nightly\n    cron: "* * * * *"\n    task: { persona: reviewer, title: T }\n');
  plan("schedules-zone.yaml", 'schedules:\n  - id: a\n    cron: "* * * * *"\n    timezone: Nowhere/Land\n    task: { persona: reviewer, title: T }\n');
  plan("schedules-syntax.yaml", "schedules:\n  - id: a\n   cron: x\n");
  plan("schedules-ghost.yaml", 'schedules:\n  - id: a\n    cron: "* * * * *"\n    task: { persona: reviewer, title: T }\n  - id: b\n    cron: "* * * * *"\n    task: { persona: ghost, title: T }\n');
  plan("approval.yaml", "tasks:\n  - persona: reviewer\n    title: A\n    payload: { approval: { deadlineMs: 0, default: approve } }\n");
  plan("backoff.yaml", "tasks:\n  - persona: reviewer\n    title: A\n    policy: { baseMs: 90000, maxMs: 1000 }\n");
  mkdirSync(files.path("bad-personas"));
  writeFileSync(files.path("bad-personas", "x.md"), "---\nid: Bad Id\nname: X\nadapter: { kind: echo }\n---\nBody.\n");
  writeFileSync(files.path("not-a-folder"), "");
  for (const [folder, personaFiles] of Object.entries(personaFolders)) {
    mkdirSync(files.path(folder));
    for (const [name, text] of Object.entries(personaFiles)) writeFileSync(files.path(folder, name), text);
  }
});

/** A persona file: front matter lines (echo adapter unless given), then a body. */
const personaText = (front: string, body = "You check things.\n") => `---\nname: Test\n${front}\n---\n${body}`;

/** Persona folders for `roster start --personas`, each with one problem (folder → file → text). */
const personaFolders: Record<string, Record<string, string>> = {
  "p-kind": { "kind.md": personaText("id: kind\nadapter: { kind: telepathy }") },
  "p-approval": { "gate.md": personaText("id: gate\nadapter: { kind: human, deadlineMs: -5, default: maybe }") },
  "p-concurrency": { "conc.md": personaText("id: conc\nadapter: { kind: echo }\nconcurrency: -1") },
  "p-jitter": { "jitter.md": personaText("id: jitter\nadapter: { kind: echo }\nretry: { jitter: 1.5 }") },
  "p-lease": { "lease.md": personaText("id: lease\nadapter: { kind: echo }\nleaseMs: 50") },
  "p-backoff-range": { "range.md": personaText("id: range\nadapter: { kind: echo }\nretry: { baseMs: 1000, maxMs: 10 }") },
  "p-backoff-kind": { "linear.md": personaText("id: linear\nadapter: { kind: echo }\nretry: { backoff: linear }") },
  "p-attempts": { "attempts.md": personaText("id: attempts\nadapter: { kind: echo }\nretry: { maxAttempts: 0 }") },
  "p-timeout": { "timeout.md": personaText("id: timeout\nadapter: { kind: echo }\ntimeoutMs: ten") },
  "p-unknown-key": { "colour.md": personaText("id: colour\nadapter: { kind: echo }\ncolour: blue") },
  "p-no-front": { "plain.md": "You check things, but there is no front matter.\n" },
  "p-unclosed": { "open.md": "---\nid: open\nname: Open\nadapter: { kind: echo }\nYou check things.\n" },
  "p-yaml": { "yaml.md": "---\nid: yaml\nname: Yaml\nadapter: { kind: echo\n---\nYou check things.\n" },
  "p-no-adapter": { "none.md": personaText("id: none") },
  "p-shell-command": { "shell.md": personaText("id: shell\nadapter: { kind: shell }") },
  "p-shell-args": { "args.md": personaText("id: args\nadapter: { kind: shell, command: ls, args: '-la' }") },
  "p-env-name": { "env.md": personaText("id: env\nadapter: { kind: shell, command: ls, env: { 'A-B': x } }") },
  "p-profile": { "agent.md": personaText("id: agent\nadapter: { kind: agent, profile: hal9000 }") },
  "p-module-escape": { "escape.md": personaText("id: escape\nadapter: { kind: module, path: ../../elsewhere/run.mjs }") },
  "p-empty-body": { "empty.md": personaText("id: empty\nadapter: { kind: echo }", "") },
  "p-duplicate": { "a.md": personaText("id: same\nadapter: { kind: echo }"), "b.md": personaText("id: same\nadapter: { kind: echo }") },
  // The good file sorts first: it must not be synced when its neighbour fails.
  "p-good-and-bad": { "a-good.md": personaText("id: fine\nadapter: { kind: echo }"), "b-bad.md": personaText("id: worse\nadapter: { kind: echo }\nconcurrency: 0") },
};

afterAll(() => {
  held.close();
  files.cleanup();
  template.cleanup();
});

interface Case {
  name: string;
  args: () => string[];
  stderr: RegExp;
  env?: Record<string, string>;
}

const f = (name: string) => files.path(name);

const cases: Case[] = [
  { name: "add with an unknown persona", args: () => ["add", "--persona", "ghost", "--title", "T"], stderr: /^roster: PERSONA_NOT_FOUND: --persona: unknown persona "ghost" \(known: [a-z, ]+\)$/ },
  { name: "add with a malformed JSON payload", args: () => ["add", "--persona", "reviewer", "--title", "T", "--payload", "{ms: 5}"], stderr: /^roster: VALIDATION: --payload: not valid JSON \(.+\)$/ },
  { name: "add without a title", args: () => ["add", "--persona", "reviewer"], stderr: /^roster: VALIDATION: --title: required/ },
  { name: "add with an empty title", args: () => ["add", "--persona", "reviewer", "--title", "  "], stderr: /^roster: VALIDATION: --title: must not be empty$/ },
  { name: "add depending on a non-numeric id", args: () => ["add", "--persona", "reviewer", "--title", "T", "--depends-on", "1,x"], stderr: /^roster: VALIDATION: --depends-on: must be a positive integer, got "x"$/ },
  { name: "add depending on a task that does not exist", args: () => ["add", "--persona", "reviewer", "--title", "T", "--depends-on", "1,999"], stderr: /^roster: DEPENDENCY_NOT_FOUND: --depends-on: task 999 does not exist$/ },
  { name: "add with a non-numeric priority", args: () => ["add", "--persona", "reviewer", "--title", "T", "--priority", "high"], stderr: /^roster: VALIDATION: --priority: must be an integer, got "high"$/ },
  { name: "add with a priority out of range", args: () => ["add", "--persona", "reviewer", "--title", "T", "--priority", "5000"], stderr: /^roster: VALIDATION: --priority: .*1000/ },
  { name: "add with zero max attempts", args: () => ["add", "--persona", "reviewer", "--title", "T", "--max-attempts", "0"], stderr: /^roster: VALIDATION: --max-attempts: must be an integer >= 1, got "0"$/ },
  { name: "add with a negative delay", args: () => ["add", "--persona", "reviewer", "--title", "T", "--delay", "-5"], stderr: /^roster: VALIDATION: --delay: must be an integer >= 0, got "-5"$/ },
  { name: "add with a payload over ROSTER_MAX_PAYLOAD_BYTES", args: () => ["add", "--persona", "reviewer", "--title", "T", "--payload", '"0123456789"'], env: { ROSTER_MAX_PAYLOAD_BYTES: "8" }, stderr: /^roster: PAYLOAD_TOO_LARGE: .*12 bytes of JSON, over the limit of 8$/ },
  // An approval's deadline and default in a payload are checked as in a persona file: a deadline already past, a default the gate would drop.
  {
    name: "add with a payload approval whose deadline is past and whose default is unknown",
    args: () => ["add", "--persona", "reviewer", "--title", "T", "--payload", '{"approval":{"deadlineMs":-5,"default":"maybe"}}'],
    stderr: /^roster: VALIDATION: --payload\.approval\.deadlineMs: Too small: expected number to be >=1; --payload\.approval\.default: Invalid option: expected one of "approve"\|"reject"$/,
  },
  { name: "a plan file with a payload approval deadline of 0", args: () => ["add", "--file", f("approval.yaml")], stderr: /^roster: VALIDATION: \S*approval\.yaml: tasks\[0\]\.payload\.approval\.deadlineMs: Too small/ },
  {
    name: "schedule add with a payload approval default that is unknown",
    args: () => ["schedule", "add", "s9", "--cron", "* * * * *", "--persona", "reviewer", "--title", "x", "--payload", '{"approval":{"default":"later"}}'],
    stderr: /payload\.approval\.default: Invalid option: expected one of "approve"\|"reject"$/,
  },
  { name: "a plan file with a dependency cycle", args: () => ["add", "--file", f("cycle.json")], stderr: /^roster: DEPENDENCY_CYCLE: \S*cycle\.json: .*dependency cycle a -> b -> a$/ },
  { name: "a plan file whose task depends on itself", args: () => ["add", "--file", f("self.yaml")], stderr: /^roster: SELF_DEPENDENCY: \S*self\.yaml: tasks\[0\] \(ref "a"\)\.dependsOn: a task cannot depend on itself/ },
  { name: "a plan file depending on an unknown ref", args: () => ["add", "--file", f("unknown-ref.json")], stderr: /^roster: DEPENDENCY_NOT_FOUND: \S*unknown-ref\.json: .*no task in this batch has ref "zz"$/ },
  { name: "a plan file with an unknown persona after a good task", args: () => ["add", "--file", f("ghost.json")], stderr: /^roster: PERSONA_NOT_FOUND: \S*ghost\.json: tasks\[1\] \(ref "g"\)\.persona: unknown persona "ghost" \(known: [a-z, ]+\)$/ },
  { name: "a plan file whose backoff base exceeds its maximum", args: () => ["add", "--file", f("backoff.yaml")], stderr: /^roster: VALIDATION: \S*backoff\.yaml: plan\.tasks\[0\]\.policy\.baseMs: must not exceed policy\.maxMs \(1000\), got 90000$/ },
  { name: "a JSON plan with a syntax error", args: () => ["add", "--file", f("syntax.json")], stderr: /^roster: VALIDATION: \S*syntax\.json: line 2 column \d+: not valid JSON/ },
  { name: "a YAML plan with a syntax error", args: () => ["add", "--file", f("syntax.yaml")], stderr: /^roster: VALIDATION: \S*syntax\.yaml: line 4 column \d+: not valid YAML/ },
  { name: "a plan file without tasks", args: () => ["add", "--file", f("empty.json")], stderr: /^roster: VALIDATION: \S*empty\.json: plan\.tasks: a plan needs at least one task$/ },
  { name: "a plan file with an unknown field", args: () => ["add", "--file", f("extra-field.yaml")], stderr: /^roster: VALIDATION: \S*extra-field\.yaml: plan\.tasks\[0\]: .*"owner"/ },
  { name: "a plan file that does not exist", args: () => ["add", "--file", f("missing.json")], stderr: /^roster: VALIDATION: \S*missing\.json: cannot read plan file \(no such file\)$/ },
  { name: "a plan file with an unknown extension", args: () => ["add", "--file", f("plan.txt")], stderr: /^roster: VALIDATION: \S*plan\.txt: a plan file must end in \.json, \.yaml or \.yml$/ },
  { name: "a plan file together with task flags", args: () => ["add", "--file", f("cycle.json"), "--persona", "reviewer"], stderr: /^roster: VALIDATION: --file: cannot be combined with --persona/ },
  { name: "show with a non-numeric id", args: () => ["show", "abc"], stderr: /^roster: VALIDATION: task id: must be a positive integer, got "abc"$/ },
  { name: "show without an id", args: () => ["show"], stderr: /^roster: USAGE: missing required argument 'id'/ },
  { name: "show of a task that does not exist", args: () => ["show", "999"], stderr: /^roster: TASK_NOT_FOUND: taskId: task 999 does not exist$/ },
  { name: "events with id 0", args: () => ["events", "0"], stderr: /^roster: VALIDATION: task id: must be a positive integer, got "0"$/ },
  { name: "retry of a pending task", args: () => ["retry", "1"], stderr: /^roster: INVALID_STATE: task 1 is pending; only failed or cancelled tasks can be retried$/ },
  { name: "cancel of a cancelled task", args: () => ["cancel", "2"], stderr: /^roster: INVALID_STATE: task 2 is cancelled; only unfinished tasks can be cancelled$/ },
  { name: "cancel without an id", args: () => ["cancel"], stderr: /^roster: USAGE: missing required argument 'id'/ },
  { name: "an unknown option", args: () => ["ls", "--colour"], stderr: /^roster: USAGE: unknown option '--colour'/ },
  { name: "an unknown command", args: () => ["list"], stderr: /^roster: USAGE: unknown command 'list'/ },
  { name: "ls with an unknown status", args: () => ["ls", "--status", "done"], stderr: /^roster: VALIDATION: --status: "done" is not one of waiting, pending/ },
  { name: "ls of an unknown persona", args: () => ["ls", "--persona", "ghost"], stderr: /^roster: PERSONA_NOT_FOUND: --persona: unknown persona "ghost" \(known: [a-z, ]+\)$/ },
  { name: "ls with a negative limit", args: () => ["ls", "--limit", "-1"], stderr: /^roster: VALIDATION: --limit: must be an integer >= 0, got "-1"$/ },
  { name: "prune without --older-than", args: () => ["prune"], stderr: /^roster: USAGE: required option '--older-than <duration>' not specified/ },
  { name: "prune with a malformed duration", args: () => ["prune", "--older-than", "7 days"], stderr: /^roster: VALIDATION: --older-than: must be a duration such as 7d/ },
  // A well-formed duration too long for a millisecond count is not "malformed": it says so, with the limit in its unit.
  { name: "prune with a duration too long to count", args: () => ["prune", "--older-than", "99999999999w"], stderr: /^roster: VALIDATION: --older-than: too long, at most 14285714w, got "99999999999w"$/ },
  { name: "prune with a duration whose cut is no date", args: () => ["prune", "--older-than", "14892000w"], stderr: /^roster: VALIDATION: --older-than: too long, at most 14285714w, got "14892000w"$/ },
  { name: "cost since a duration too long to count", args: () => ["cost", "--since", "100000001d"], stderr: /^roster: VALIDATION: --since: too long, at most 100000000d, got "100000001d"$/ },
  { name: "start with concurrency 0", args: () => ["start", "--concurrency", "0"], stderr: /^roster: VALIDATION: --concurrency: must be an integer >= 1, got "0"$/ },
  { name: "start with --no-metrics and a metrics port", args: () => ["start", "--no-metrics", "--metrics-port", "9000"], stderr: /^roster: VALIDATION: --no-metrics: cannot be combined with --metrics-port/ },
  { name: "start with an unknown synchronous mode", args: () => ["start", "--synchronous", "OFF"], stderr: /^roster: VALIDATION: --synchronous: must be NORMAL or FULL, got "OFF"$/ },
  { name: "start with an unknown log level", args: () => ["start", "--log-level", "loud"], stderr: /^roster: USAGE: option '--log-level <level>' argument 'loud' is invalid/ },
  { name: "start with an MCP token but no MCP port", args: () => ["start", "--mcp-token", "s3cret-token"], stderr: /^roster: VALIDATION: --mcp-host and --mcp-token need --mcp-port/ },
  { name: "start with a non-integer ROSTER_CONCURRENCY", args: () => ["start"], env: { ROSTER_CONCURRENCY: "lots" }, stderr: /^roster: CONFIG_INVALID: ROSTER_CONCURRENCY: must be an integer, got "lots"$/ },
  { name: "start with a persona file that does not validate", args: () => ["start", "--personas", f("bad-personas")], stderr: /^roster: PERSONA_INVALID: \S*x\.md: front matter\.id: must be lowercase/ },
  // Past 2^31 - 1 ms Node runs a timer after 1 ms: `status --watch` redrew in a tight loop and
  // `mcp` reaped every millisecond (src/timers.ts). Refused, as every other out-of-range flag.
  { name: "status --watch redrawing every 35 days", args: () => ["status", "--watch", "--interval", "3000000000"], stderr: /^roster: VALIDATION: --interval: must be an integer from 100 to 86400000, got "3000000000"$/ },
  { name: "mcp reaping every 35 days", args: () => ["mcp", "--reap-interval-ms", "3000000000"], stderr: /^roster: VALIDATION: --reap-interval-ms: must be an integer from 10 to 2147483647, got "3000000000"$/ },

  // Schedules (docs/humans-and-schedules.md): refused before anything is written, named as the command line or the file says it.
  { name: "schedule add with a bad cron expression", args: () => ["schedule", "add", "s1", "--cron", "61 * * * *", "--persona", "reviewer", "--title", "x"], stderr: /^roster: VALIDATION: --cron: "61 \* \* \* \*" is not a cron expression croner accepts/ },
  { name: "schedule add with an id in capitals", args: () => ["schedule", "add", "S1", "--cron", "* * * * *", "--persona", "reviewer", "--title", "x"], stderr: /^roster: VALIDATION: <id>: must be lowercase letters, digits, _ \. or -, starting with a letter or digit, got "S1"$/ },
  { name: "schedule sync of a file with a bad cron expression", args: () => ["schedule", "sync", f("schedules-cron.yaml")], stderr: /^roster: VALIDATION: \S*schedules-cron\.yaml: schedules\[0\]\.cron: "61 \* \* \* \*" is not a cron expression croner accepts/ },
  { name: "schedule sync of a file with an id in capitals", args: () => ["schedule", "sync", f("schedules-id.yaml")], stderr: /^roster: VALIDATION: \S*schedules-id\.yaml: schedules\[0\]\.id: must be lowercase letters, digits, _ \. or -, starting with a letter or digit, got "Nightly"$/ },
  { name: "schedule add with an unknown time zone", args: () => ["schedule", "add", "s2", "--cron", "* * * * *", "--persona", "reviewer", "--title", "x", "--tz", "Mars/Olympus"], stderr: /^roster: VALIDATION: --tz: "Mars\/Olympus" is not an IANA time zone/ },
  { name: "schedule sync of a file with an unknown time zone", args: () => ["schedule", "sync", f("schedules-zone.yaml")], stderr: /^roster: VALIDATION: \S*schedules-zone\.yaml: schedules\[0\]\.timezone: "Nowhere\/Land" is not an IANA time zone/ },
  { name: "schedule sync of a file with a YAML syntax error", args: () => ["schedule", "sync", f("schedules-syntax.yaml")], stderr: /^roster: VALIDATION: \S*schedules-syntax\.yaml: line 3 column 1: not valid YAML \(.+\)$/ },
  { name: "schedule add with an unknown persona", args: () => ["schedule", "add", "s3", "--cron", "* * * * * *", "--persona", "ghost", "--title", "x"], stderr: /^roster: PERSONA_NOT_FOUND: --persona: unknown persona "ghost" \(known: [a-z, ]+\)$/ },
  { name: "schedule add with a misspelt persona", args: () => ["schedule", "add", "s3", "--cron", "* * * * *", "--persona", "reviewr", "--title", "x"], stderr: /^roster: PERSONA_NOT_FOUND: --persona: unknown persona "reviewr" \(did you mean "reviewer"\? known: [a-z, ]+\)$/ },
  { name: "schedule sync of a file with an unknown persona after a good schedule", args: () => ["schedule", "sync", f("schedules-ghost.yaml")], stderr: /^roster: PERSONA_NOT_FOUND: \S*schedules-ghost\.yaml: schedules\[1\]\.task\.persona: unknown persona "ghost" \(known: [a-z, ]+\)$/ },

  // Persona files (roster start checks them before it opens the database).
  ...personaCases([
    ["an unknown adapter kind", "p-kind", /\S*kind\.md: front matter\.adapter\.kind: Invalid discriminator value\. Expected 'echo' \| 'sleep'/],
    // The same check as a task's payload.approval (src/store/approval-gate.ts), with the same words.
    ["an approval deadline not ahead and an unknown default", "p-approval", /\S*gate\.md: front matter\.adapter\.deadlineMs: Too small: expected number to be >=1; front matter\.adapter\.default: Invalid option: expected one of "approve"\|"reject"$/],
    ["a negative concurrency", "p-concurrency", /\S*conc\.md: front matter\.concurrency: Too small: expected number to be >=1$/],
    ["a backoff jitter over 1", "p-jitter", /\S*jitter\.md: front matter\.retry\.jitter: Too big: expected number to be <=1$/],
    ["a lease shorter than 100 ms", "p-lease", /\S*lease\.md: front matter\.leaseMs: Too small: expected number to be >=100$/],
    ["a backoff maxMs below baseMs", "p-backoff-range", /\S*range\.md: front matter\.retry\.maxMs: maxMs must be >= baseMs$/],
    ["an unknown backoff", "p-backoff-kind", /\S*linear\.md: front matter\.retry\.backoff: Invalid option: expected one of "fixed"\|"exponential"$/],
    ["zero max attempts", "p-attempts", /\S*attempts\.md: front matter\.retry\.maxAttempts: Too small: expected number to be >=1$/],
    ["a timeout that is not a number", "p-timeout", /\S*timeout\.md: front matter\.timeoutMs: Invalid input: expected number, received string$/],
    ["an unknown front-matter key", "p-unknown-key", /\S*colour\.md: front matter: Unrecognized key: "colour"$/],
    ["no front matter", "p-no-front", /\S*plain\.md: must start with YAML front matter between --- lines$/],
    ["front matter that is never closed", "p-unclosed", /\S*open\.md: must start with YAML front matter between --- lines$/],
    ["front matter that is not valid YAML", "p-yaml", /\S*yaml\.md: line 4 column 22: front matter is not valid YAML \(Flow map in block collection must be sufficiently indented and end with a \}\)$/],
    ["no adapter", "p-no-adapter", /\S*none\.md: front matter\.adapter: Invalid input: expected object, received undefined$/],
    ["a shell adapter without a command", "p-shell-command", /\S*shell\.md: front matter\.adapter\.command: Invalid input: expected string, received undefined$/],
    ["shell args given as one string", "p-shell-args", /\S*args\.md: front matter\.adapter\.args: Invalid input: expected array, received string$/],
    ["an env name that is not a variable name", "p-env-name", /\S*env\.md: front matter\.adapter\.env\.A-B: key "A-B": env names are letters, digits and _$/],
    ["an unknown agent profile", "p-profile", /\S*agent\.md: front matter\.adapter\.profile: must be one of claude, codex, gemini, custom$/],
    ["a module path that leads out of the personas folder", "p-module-escape", /\S*escape\.md: adapter\.path: persona "escape" adapter\.path "\.\.\/\.\.\/elsewhere\/run\.mjs": leads out of the personas folder/],
    ["an empty definition", "p-empty-body", /\S*empty\.md: the markdown body \(the persona's definition\) is empty$/],
    ["two files with one id", "p-duplicate", /\S*b\.md: id "same" is already used by \S*a\.md$/],
    ["a good file beside a bad one", "p-good-and-bad", /\S*b-bad\.md: front matter\.concurrency: Too small: expected number to be >=1$/],
  ]),
  // The folder named as it was given: the variable or the flag.
  { name: "start with ROSTER_PERSONAS naming no folder", args: () => ["start"], env: { ROSTER_PERSONAS: "/nonexistent/personas" }, stderr: /^roster: PERSONA_INVALID: ROSTER_PERSONAS=\/nonexistent\/personas: personas folder does not exist$/ },
  { name: "start with --personas naming no folder", args: () => ["start", "--personas", "/nonexistent/personas"], stderr: /^roster: PERSONA_INVALID: --personas \/nonexistent\/personas: personas folder does not exist$/ },
  { name: "init with ROSTER_PERSONAS naming a file", args: () => ["init"], env: { ROSTER_PERSONAS: "not-a-folder" }, stderr: /^roster: VALIDATION: ROSTER_PERSONAS=not-a-folder: is a file, not a folder$/ },

  // Config: environment variables and flags, each named with the value it refused.
  { name: "start with ROSTER_LOG_LEVEL=loud", args: () => ["start"], env: { ROSTER_LOG_LEVEL: "loud" }, stderr: /^roster: CONFIG_INVALID: ROSTER_LOG_LEVEL: Invalid option: expected one of "trace"\|.*"silent", got "loud"$/ },
  { name: "a read command with ROSTER_LOG_LEVEL=loud", args: () => ["ls"], env: { ROSTER_LOG_LEVEL: "loud" }, stderr: /^roster: CONFIG_INVALID: ROSTER_LOG_LEVEL: Invalid option: .*, got "loud"$/ },
  { name: "start with ROSTER_CONCURRENCY=0", args: () => ["start"], env: { ROSTER_CONCURRENCY: "0" }, stderr: /^roster: CONFIG_INVALID: ROSTER_CONCURRENCY: Too small: expected number to be >=1, got "0"$/ },
  { name: "start with ROSTER_THREADS=-1", args: () => ["start"], env: { ROSTER_THREADS: "-1" }, stderr: /^roster: CONFIG_INVALID: ROSTER_THREADS: Too small: expected number to be >=1, got "-1"$/ },
  { name: "start with ROSTER_WORKER_HEAP_LIMIT_MB=8", args: () => ["start"], env: { ROSTER_WORKER_HEAP_LIMIT_MB: "8" }, stderr: /^roster: CONFIG_INVALID: ROSTER_WORKER_HEAP_LIMIT_MB: Too small: expected number to be >=16, got "8"$/ },
  { name: "start with ROSTER_ALLOW_ABSOLUTE_MODULES=maybe", args: () => ["start"], env: { ROSTER_ALLOW_ABSOLUTE_MODULES: "maybe" }, stderr: /^roster: CONFIG_INVALID: ROSTER_ALLOW_ABSOLUTE_MODULES: must be 1, true, 0 or false, got "maybe"$/ },
  { name: "add with ROSTER_SYNCHRONOUS=off", args: () => ["add", "--persona", "reviewer", "--title", "T"], env: { ROSTER_SYNCHRONOUS: "off" }, stderr: /^roster: CONFIG_INVALID: ROSTER_SYNCHRONOUS: Invalid option: expected one of "NORMAL"\|"FULL", got "off"$/ },
  { name: "add with ROSTER_MAX_PAYLOAD_BYTES=0", args: () => ["add", "--persona", "reviewer", "--title", "T"], env: { ROSTER_MAX_PAYLOAD_BYTES: "0" }, stderr: /^roster: CONFIG_INVALID: ROSTER_MAX_PAYLOAD_BYTES: Too small: expected number to be >=1, got "0"$/ },
  { name: "roster mcp with ROSTER_CONCURRENCY=0", args: () => ["mcp"], env: { ROSTER_CONCURRENCY: "0" }, stderr: /^roster: CONFIG_INVALID: ROSTER_CONCURRENCY: Too small: expected number to be >=1, got "0"$/ },
  { name: "roster mcp with an unknown profile", args: () => ["mcp", "--profile", "boss"], stderr: /^roster: VALIDATION: --profile: .*"boss"/ },
  { name: "start with a metrics port over 65535", args: () => ["start", "--metrics-port", "70000"], stderr: /^roster: VALIDATION: --metrics-port: must be an integer from 0 to 65535, got "70000"$/ },
  { name: "start with a non-numeric metrics port", args: () => ["start", "--metrics-port", "abc"], stderr: /^roster: VALIDATION: --metrics-port: must be an integer from 0 to 65535, got "abc"$/ },
  { name: "start with a negative MCP port", args: () => ["start", "--mcp-port", "-1"], stderr: /^roster: VALIDATION: --mcp-port: must be an integer from 0 to 65535, got "-1"$/ },
  // A port that cannot be bound is refused before the database is opened: no task runs, no demo is seeded.
  { name: "start on a metrics port in use", args: () => ["start", "--personas", template.personasDir, "--metrics-port", heldPort()], stderr: /^roster: CONFIG_INVALID: metrics: cannot listen on 127\.0\.0\.1:\d+ \(address in use\); set --metrics-port or --no-metrics$/ },
  { name: "start on an MCP port in use", args: () => ["start", "--personas", template.personasDir, "--metrics-port", "0", "--mcp-port", heldPort()], stderr: /^roster: CONFIG_INVALID: mcp: cannot listen on 127\.0\.0\.1:\d+ \(address in use\); set --mcp-port$/ },
  { name: "start on a dashboard port in use", args: () => ["start", "--personas", template.personasDir, "--no-metrics", "--ui-port", heldPort()], stderr: /^roster: CONFIG_INVALID: ui: cannot listen on 127\.0\.0\.1:\d+ \(address in use\); set --ui-port$/ },
  { name: "start with a metrics host that is not this machine's", args: () => ["start", "--personas", template.personasDir, "--metrics-port", "0", "--metrics-host", "192.0.2.1"], stderr: /^roster: CONFIG_INVALID: metrics: cannot listen on 192\.0\.2\.1:0 \(not an address of this machine\); set --metrics-port or --no-metrics$/ },
  { name: "start serving MCP off loopback without a token", args: () => ["start", "--personas", template.personasDir, "--no-metrics", "--mcp-port", "0", "--mcp-host", "0.0.0.0"], stderr: /^roster: CONFIG_INVALID: mcp\.host: 0\.0\.0\.0 is not a loopback address; serving MCP there needs a token \(--mcp-token or ROSTER_MCP_TOKEN, or --mcp-worker-token \/ --mcp-planner-token\)$/ },
  { name: "start with zero threads", args: () => ["start", "--threads", "0"], stderr: /^roster: VALIDATION: --threads: must be an integer >= 1, got "0"$/ },
  { name: "start with more threads than allowed", args: () => ["start", "--threads", "1000"], stderr: /^roster: CONFIG_INVALID: --threads: Too big: expected number to be <=256, got 1000$/ },
  { name: "start with an empty metrics host", args: () => ["start", "--metrics-host", ""], stderr: /^roster: CONFIG_INVALID: --metrics-host: Too small: expected string to have >=1 characters, got ""$/ },

  // Economics (docs/economics.md): cost reports, budgets, provider pauses, breakers.
  { name: "cost by an unknown group", args: () => ["cost", "--by", "colour"], stderr: /^roster: VALIDATION: --by: must be one of persona, goal, model, agent, day, provider, got "colour"$/ },
  { name: "cost since a malformed duration", args: () => ["cost", "--since", "7 days"], stderr: /^roster: VALIDATION: --since: must be a duration such as 7d/ },
  { name: "cost of a goal that does not exist", args: () => ["cost", "--goal", "999"], stderr: /^roster: TASK_NOT_FOUND: taskId: task 999 does not exist$/ },
  { name: "budget set naming no budget", args: () => ["budget", "set", "--usd", "1"], stderr: /^roster: VALIDATION: --task, --goal, --persona, --global: name exactly one budget, got none$/ },
  { name: "budget set naming two budgets", args: () => ["budget", "set", "--goal", "1", "--persona", "reviewer", "--usd", "1"], stderr: /^roster: VALIDATION: .*got --goal and --persona$/ },
  { name: "budget set without a limit", args: () => ["budget", "set", "--goal", "1"], stderr: /^roster: VALIDATION: --usd, --tokens: a budget needs a limit/ },
  { name: "budget set with dollars that are not a number", args: () => ["budget", "set", "--goal", "1", "--usd", "five"], stderr: /^roster: VALIDATION: --usd: must be a non-negative amount of US dollars such as 5 or 0\.25, got "five"$/ },
  { name: "budget set with negative tokens", args: () => ["budget", "set", "--goal", "1", "--tokens=-5"], stderr: /^roster: VALIDATION: --tokens: must be an integer >= 0, got "-5"$/ },
  { name: "budget set for a goal that does not exist", args: () => ["budget", "set", "--goal", "999", "--usd", "1"], stderr: /^roster: TASK_NOT_FOUND: goal: task 999 does not exist$/ },
  { name: "budget set for an unknown persona", args: () => ["budget", "set", "--persona", "ghost", "--usd", "1"], stderr: /^roster: PERSONA_NOT_FOUND: persona: unknown persona "ghost"$/ },
  { name: "budget set per an unknown window", args: () => ["budget", "set", "--persona", "reviewer", "--usd", "1", "--per", "week"], stderr: /^roster: VALIDATION: --per: must be one of total, hour, day, got "week"$/ },
  { name: "budget set per day for a goal", args: () => ["budget", "set", "--goal", "1", "--usd", "1", "--per", "day"], stderr: /^roster: VALIDATION: --per: a goal budget is for the goal's whole life/ },
  { name: "budget raise of a goal with no budget", args: () => ["budget", "raise", "--goal", "1", "--usd", "1"], stderr: /^roster: INVALID_STATE: goal 1: has no budget to raise; set one with `roster budget set`$/ },
  { name: "budget raise without an amount", args: () => ["budget", "raise", "--global"], stderr: /^roster: VALIDATION: --usd, --tokens: a raise needs an amount/ },
  { name: "budget rm of a budget never set", args: () => ["budget", "rm", "--global"], stderr: /^roster: INVALID_STATE: global: has no budget to remove/ },
  { name: "provider resume of a provider not paused", args: () => ["provider", "resume", "acme"], stderr: /^roster: INVALID_STATE: provider "acme" is not paused \(paused: none\)$/ },
  { name: "breaker reset of an unknown persona", args: () => ["breaker", "reset", "ghost"], stderr: /^roster: PERSONA_NOT_FOUND: persona: unknown persona "ghost"$/ },
  { name: "breaker reset of a closed breaker", args: () => ["breaker", "reset", "reviewer"], stderr: /^roster: INVALID_STATE: persona "reviewer": its breaker is closed with no failures counted; nothing to reset$/ },
  { name: "start with an unknown MCP profile", args: () => ["start", "--mcp-port", "0", "--mcp-profile", "boss"], stderr: /^roster: VALIDATION: --mcp-profile: must be one of planner, worker, all, got "boss"$/ },
  { name: "start with an MCP profile but no MCP port", args: () => ["start", "--mcp-profile", "worker"], stderr: /^roster: VALIDATION: --mcp-host and --mcp-token need --mcp-port, as do --mcp-profile/ },
  { name: "start with an empty MCP worker token", args: () => ["start", "--mcp-port", "0", "--mcp-worker-token", ""], stderr: /^roster: CONFIG_INVALID: --mcp-worker-token: Too small/ },

  // Each message names what the user typed: the flag (not the store's field) or the variable a value came from.
  // The store's field is delayMs; the message names the flag, --delay.
  { name: "add with a delay over a year", args: () => ["add", "--persona", "reviewer", "--title", "T", "--delay", "8640000000000000"], stderr: /^roster: VALIDATION: --delay: Too big: expected number to be <=31536000000$/ },
];

/** `roster start --personas <folder>` cases: [what, folder, message after "PERSONA_INVALID: "]. */
function personaCases(rows: Array<[string, string, RegExp]>): Case[] {
  return rows.map(([what, folder, message]) => ({
    name: `start with a persona file with ${what}`,
    args: () => ["start", "--personas", f(folder)],
    stderr: new RegExp(`^roster: PERSONA_INVALID: ${message.source}`),
  }));
}

describe("bad input prints one clear line, exits 2 and writes nothing", () => {
  it.concurrent.each(cases)("$name", async ({ args, stderr, env }) => {
    const res = await roster([...args(), "--db", db], { env: env ?? {}, cwd: files.dir });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe("");
    expect(res.stderr.endsWith("\n")).toBe(true);
    expect(res.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(res.stderr.trimEnd()).toMatch(stderr);
    expect(await tableCounts(db)).toEqual(baseline);
  });
});

describe("bad input leaves the task list as it was", () => {
  const headline: Case[] = [cases[0]!, cases[1]!, cases[11]!, cases[23]!];
  it.each(headline)("roster ls --json --limit 0 is the same before and after: $name", async ({ args }) => {
    const before = await rosterJson<TaskRecord[]>(["ls", "--limit", "0", "--db", db]);
    const res = await roster([...args(), "--db", db], { cwd: files.dir });
    expect(res.code).toBe(2);
    expect(await rosterJson<TaskRecord[]>(["ls", "--limit", "0", "--db", db])).toEqual(before);
    expect(before.map((t) => t.id)).toEqual([2, 1]); // newest first
  });
});

describe("bad input never creates a database", () => {
  it("refuses a --db path with no database for a read command, without creating the file", async () => {
    const path = files.path("nothing-here.db");
    const res = await roster(["ls", "--db", path]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^roster: VALIDATION: --db \S*nothing-here\.db: no roster database there; run `roster init` first/);
    expect(existsSync(path)).toBe(false);
  });

  // The path came from ROSTER_DB, not from --db: the message names the variable.
  it.each([
    ["a missing folder", "missing-folder/x.db", /^roster: DATABASE_PATH_INVALID: ROSTER_DB=\S*missing-folder\/x\.db: no roster database there: folder \S*missing-folder does not exist\n$/],
    ["no file", "env-nothing.db", /^roster: VALIDATION: ROSTER_DB=\S*env-nothing\.db: no roster database there; run `roster init` first/],
  ])("refuses a ROSTER_DB path with %s for a read command, naming ROSTER_DB", async (_what, name, message) => {
    const path = files.path(name);
    const res = await roster(["ls"], { env: { ROSTER_DB: path }, cwd: files.dir });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(message);
    expect(existsSync(path)).toBe(false);
  });

  it("init with a persona file that does not validate creates no database", async () => {
    const path = files.path("init-bad.db");
    const res = await roster(["init", "--db", path, "--personas", f("bad-personas")]);
    expect(res.code).toBe(2);
    expect(res.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/^roster: PERSONA_INVALID: \S*x\.md: front matter\.id/);
    expect(existsSync(path)).toBe(false);
  });

  it("start --demo on a port in use creates no database and seeds nothing", async () => {
    const path = files.path("start-port.db");
    const res = await roster(["start", "--demo", "--exit-when-idle", "--db", path, "--personas", template.personasDir, "--metrics-port", heldPort()], { cwd: files.dir });
    expect(res.code).toBe(2);
    expect(res.stderr.trimEnd()).toMatch(/^roster: CONFIG_INVALID: metrics: cannot listen on 127\.0\.0\.1:\d+ \(address in use\)/);
    expect(existsSync(path)).toBe(false);
  });

  it("init with --personas naming a file refuses and creates no database", async () => {
    const path = files.path("init-file.db");
    const res = await roster(["init", "--db", path, "--personas", f("not-a-folder")]);
    expect(res.code).toBe(2);
    expect(res.stderr.trimEnd()).toMatch(/^roster: VALIDATION: --personas \S*not-a-folder: is a file, not a folder$/);
    expect(existsSync(path)).toBe(false);
  });
});

/** What the MCP cases refer to: the agent, its held task and lease, and two tasks b → a. */
interface McpRefs {
  agentId: string;
  held: number;
  leaseToken: string;
  a: number;
  b: number;
}

interface McpCase {
  name: string;
  tool: string;
  args: (refs: McpRefs) => Record<string, unknown>;
  /** The result's text: it must name the field (and the offending task where there is one). */
  text: RegExp;
  /** The error code (schema failures are VALIDATION, in the same shape as the rest). */
  code?: string;
}

const BIG = "x".repeat(1024 * 1024 + 10);

const mcpCases: McpCase[] = [
  { name: "create_tasks with a title that is a number", tool: "create_tasks", args: () => ({ tasks: [{ persona: "reviewer", title: 42 }] }), code: "VALIDATION", text: /"message":"tasks\[0\]\.title: Invalid input: expected string, received number","field":"tasks\[0\]\.title"/ },
  { name: "create_tasks with a priority that is a word", tool: "create_tasks", args: () => ({ tasks: [{ persona: "reviewer", title: "T", priority: "high" }] }), code: "VALIDATION", text: /"message":"tasks\[0\]\.priority: Invalid input: expected number, received string","field":"tasks\[0\]\.priority"/ },
  {
    name: "create_tasks with a payload approval whose deadline is past",
    tool: "create_tasks",
    args: () => ({ tasks: [{ persona: "reviewer", title: "ok" }, { persona: "reviewer", title: "T", payload: { approval: { deadlineMs: -5, default: "approve" } } }] }),
    code: "VALIDATION",
    text: /tasks\[1\]\.payload\.approval\.deadlineMs: Too small: expected number to be >=1/,
  },
  { name: "create_tasks with no tasks", tool: "create_tasks", args: () => ({ tasks: [] }), code: "VALIDATION", text: /"message":"tasks: Too small: expected array to have >=1 items","field":"tasks"/ },
  { name: "create_tasks with an unknown persona after a good task", tool: "create_tasks", args: () => ({ tasks: [{ persona: "reviewer", title: "ok" }, { ref: "g", persona: "ghost", title: "G" }] }), code: "PERSONA_NOT_FOUND", text: /tasks\[1\] \(ref \\"g\\"\)\.persona: unknown persona \\"ghost\\"/ },
  { name: "create_tasks with a dependency cycle", tool: "create_tasks", args: () => ({ tasks: [{ ref: "a", persona: "reviewer", title: "A", dependsOn: ["b"] }, { ref: "b", persona: "reviewer", title: "B", dependsOn: ["a"] }] }), code: "DEPENDENCY_CYCLE", text: /dependsOn.*cycle a -> b -> a/ },
  { name: "create_tasks with a task depending on itself", tool: "create_tasks", args: () => ({ tasks: [{ ref: "a", persona: "reviewer", title: "A", dependsOn: ["a"] }] }), code: "SELF_DEPENDENCY", text: /tasks\[0\] \(ref \\"a\\"\)\.dependsOn/ },
  { name: "create_tasks depending on an unknown ref", tool: "create_tasks", args: () => ({ tasks: [{ ref: "a", persona: "reviewer", title: "A", dependsOn: ["zz"] }] }), code: "DEPENDENCY_NOT_FOUND", text: /dependsOn.*ref \\"zz\\"/ },
  { name: "create_tasks depending on a task id that does not exist", tool: "create_tasks", args: () => ({ tasks: [{ persona: "reviewer", title: "A", dependsOn: [999] }] }), code: "DEPENDENCY_NOT_FOUND", text: /dependsOn.*999/ },
  { name: "create_tasks with a payload over the size limit", tool: "create_tasks", args: () => ({ tasks: [{ persona: "reviewer", title: "A", payload: BIG }] }), code: "PAYLOAD_TOO_LARGE", text: /tasks\[0\]\.payload is \d+ bytes of JSON, over the limit of 1048576/ },
  { name: "create_tasks under a parent that does not exist", tool: "create_tasks", args: () => ({ parentId: 999, tasks: [{ persona: "reviewer", title: "A" }] }), code: "TASK_NOT_FOUND", text: /parentId: task 999 does not exist/ },
  { name: "claim_task with an agentId that is a number", tool: "claim_task", args: () => ({ agentId: 7, persona: "reviewer" }), code: "VALIDATION", text: /"message":"agentId: Invalid input: expected string, received number","field":"agentId"/ },
  { name: "claim_task for an unknown persona", tool: "claim_task", args: (r) => ({ agentId: r.agentId, persona: "ghost" }), code: "PERSONA_NOT_FOUND", text: /persona: unknown persona \\"ghost\\"/ },
  { name: "claim_task by an agent that never registered", tool: "claim_task", args: () => ({ agentId: "nobody", persona: "reviewer" }), code: "AGENT_NOT_FOUND", text: /agentId: no agent \\"nobody\\"/ },
  { name: "claim_task waiting longer than allowed", tool: "claim_task", args: (r) => ({ agentId: r.agentId, persona: "reviewer", waitMs: 10 ** 9 }), code: "VALIDATION", text: /"message":"waitMs: Too big: expected number to be <=30000","field":"waitMs"/ },
  { name: "complete_task without a lease token", tool: "complete_task", args: (r) => ({ taskId: r.held, result: "done" }), code: "VALIDATION", text: /"message":"leaseToken: Invalid input: expected string, received undefined","field":"leaseToken"/ },
  { name: "complete_task with a lease token that is not the task's", tool: "complete_task", args: (r) => ({ taskId: r.held, leaseToken: "not-the-token", result: "done" }), code: "LEASE_LOST", text: /lease lost on task \d+: .*"field":"leaseToken"/ },
  { name: "complete_task with a result over the size limit", tool: "complete_task", args: (r) => ({ taskId: r.held, leaseToken: r.leaseToken, result: BIG }), code: "PAYLOAD_TOO_LARGE", text: /result is \d+ bytes of JSON, over the limit/ },
  { name: "complete_task with child tasks in a cycle", tool: "complete_task", args: (r) => ({ taskId: r.held, leaseToken: r.leaseToken, tasks: [{ ref: "x", persona: "reviewer", title: "X", dependsOn: ["y"] }, { ref: "y", persona: "reviewer", title: "Y", dependsOn: ["x"] }] }), code: "DEPENDENCY_CYCLE", text: /dependsOn.*cycle x -> y -> x/ },
  { name: "complete_task with a child of an unknown persona", tool: "complete_task", args: (r) => ({ taskId: r.held, leaseToken: r.leaseToken, tasks: [{ persona: "ghost", title: "X" }] }), code: "PERSONA_NOT_FOUND", text: /tasks\[0\]\.persona: unknown persona \\"ghost\\"/ },
  { name: "complete_task of a task id that does not exist", tool: "complete_task", args: (r) => ({ taskId: 999, leaseToken: r.leaseToken }), code: "TASK_NOT_FOUND", text: /taskId: task 999 does not exist/ },
  { name: "release_task of a task id that does not exist", tool: "release_task", args: (r) => ({ taskId: 999, leaseToken: r.leaseToken }), code: "TASK_NOT_FOUND", text: /taskId: task 999 does not exist/ },
  { name: "fail_task with an empty error", tool: "fail_task", args: (r) => ({ taskId: r.held, leaseToken: r.leaseToken, error: "" }), code: "VALIDATION", text: /"message":"error: Too small: expected string to have >=1 characters","field":"error"/ },
  { name: "report_progress with a fraction over 1", tool: "report_progress", args: (r) => ({ taskId: r.held, leaseToken: r.leaseToken, fraction: 1.5 }), code: "VALIDATION", text: /"message":"fraction: Too big: expected number to be <=1","field":"fraction"/ },
  { name: "release_task with a negative delay", tool: "release_task", args: (r) => ({ taskId: r.held, leaseToken: r.leaseToken, delayMs: -1 }), code: "VALIDATION", text: /"message":"delayMs: Too small: expected number to be >=0","field":"delayMs"/ },
  { name: "heartbeat by an agent that never registered", tool: "heartbeat", args: () => ({ agentId: "nobody" }), code: "AGENT_NOT_FOUND", text: /agentId: no agent \\"nobody\\"/ },
  { name: "register_agent with a heartbeat timeout under a second", tool: "register_agent", args: () => ({ name: "w2", heartbeatTimeoutMs: 10 }), code: "VALIDATION", text: /"message":"heartbeatTimeoutMs: Too small: expected number to be >=1000","field":"heartbeatTimeoutMs"/ },
  { name: "register_agent for an unknown persona", tool: "register_agent", args: () => ({ name: "w2", persona: "ghost" }), code: "PERSONA_NOT_FOUND", text: /persona: unknown persona \\"ghost\\"/ },
  { name: "get_task of a task that does not exist", tool: "get_task", args: () => ({ taskId: 4242 }), code: "TASK_NOT_FOUND", text: /taskId: task 4242 does not exist/ },
  { name: "get_task with a task id that is a word", tool: "get_task", args: () => ({ taskId: "three" }), code: "VALIDATION", text: /"message":"taskId: Invalid input: expected number, received string","field":"taskId"/ },
  { name: "cancel_task of a cancelled task", tool: "cancel_task", args: () => ({ taskId: 2 }), code: "INVALID_STATE", text: /task 2 is cancelled/ },
  { name: "retry_task of a pending task", tool: "retry_task", args: () => ({ taskId: 1 }), code: "INVALID_STATE", text: /task 1 is pending/ },
  { name: "add_dependency that would close a cycle", tool: "add_dependency", args: (r) => ({ taskId: r.a, dependsOn: r.b }), code: "DEPENDENCY_CYCLE", text: /dependsOn: adding \d+ -> \d+ would close the cycle/ },
  { name: "add_dependency of a task on itself", tool: "add_dependency", args: (r) => ({ taskId: r.a, dependsOn: r.a }), code: "SELF_DEPENDENCY", text: /dependsOn: task \d+ cannot depend on itself/ },
  { name: "list_tasks with an unknown status", tool: "list_tasks", args: () => ({ status: "done" }), code: "VALIDATION", text: /"message":"status: must be one of waiting, pending, .*, or a non-empty list of them","field":"status"/ },
];

describe("MCP tool calls with bad input answer isError, name the field and write nothing", () => {
  let mcpDb: { db: string; cleanup(): void };
  let server: SpawnedClient;
  let reader: Database.Database;
  let refs: McpRefs;
  let mcpBaseline: Record<string, number>;

  beforeAll(async () => {
    mcpDb = template.copy();
    const store = await openStore({ path: mcpDb.db });
    const { ids } = await store.tasks.enqueue({
      tasks: [
        { persona: "reviewer", title: "pending" },
        { persona: "reviewer", title: "cancelled" },
        { persona: "implementer", title: "held" },
        { ref: "a", persona: "reviewer", title: "a" },
        { ref: "b", persona: "reviewer", title: "b", dependsOn: ["a"] },
      ],
      now: Date.now(),
    });
    await store.tasks.cancel({ taskId: ids[1]!, now: Date.now() });
    await store.close();
    server = await spawnMcpClient({ db: mcpDb.db, profile: "all", name: "bad-input" });
    const { agentId } = await call(server.client, "register_agent", { name: "w1" });
    const claim = await call(server.client, "claim_task", { agentId, persona: "implementer" });
    expect(claim.task.id).toBe(ids[2]);
    refs = { agentId, held: ids[2]!, leaseToken: claim.leaseToken, a: ids[3]!, b: ids[4]! };
    mcpBaseline = await tableCounts(mcpDb.db);
    reader = new Database(mcpDb.db, { readonly: true });
  });

  afterAll(async () => {
    reader?.close();
    await server?.close();
    mcpDb?.cleanup();
  });

  it.each(mcpCases)("$name", async ({ tool, args, text, code }) => {
    const version = reader.pragma("data_version", { simple: true });
    const result = (await server.client.callTool({ name: tool, arguments: args(refs) })) as CallToolResult;
    const body = (result.content[0] as { text: string }).text;
    expect(result.isError, body).toBe(true);
    expect(body).toMatch(text);
    if (code !== undefined) expect((result.structuredContent as { error?: { code?: string } } | undefined)?.error?.code).toBe(code);
    // No other connection committed anything since `version` was read: nothing written at all.
    expect(reader.pragma("data_version", { simple: true })).toBe(version);
    expect(await tableCounts(mcpDb.db)).toEqual(mcpBaseline);
  });

  it("leaves the held task in progress under its lease after every bad call", async () => {
    const { task } = await call(server.client, "get_task", { taskId: refs.held });
    expect(task).toMatchObject({ status: "in_progress", attempts: 1 });
    expect(server.stderr()).not.toMatch(/"level":(50|60)/);
  });
});

/**
 * Strings that are not well-formed Unicode (a UTF-16 surrogate without its pair,
 * which a JSON `\ud800` escape can carry) would be stored altered (SQLite's TEXT
 * is UTF-8), so every way in refuses them naming the field (issue 12, defect 8).
 */
describe("strings with a lone surrogate are refused with the field named and nothing written", () => {
  it("a plan file whose title holds a lone surrogate", async () => {
    writeFileSync(files.path("lone-title.json"), '{"tasks": [{"persona": "reviewer", "title": "ab\\ud800c"}]}\n');
    const res = await roster(["add", "--file", files.path("lone-title.json"), "--db", db], { cwd: files.dir });
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(/^roster: VALIDATION: \S*lone-title\.json: tasks\[0\]\.title: not well-formed Unicode \(lone surrogate at index 2\)\n$/);
    expect(res.code).toBe(2);
    expect(await tableCounts(db)).toEqual(baseline);
  });

  it("a plan file whose idempotency key holds a lone surrogate, after a good task", async () => {
    writeFileSync(
      files.path("lone-key.yaml"),
      'tasks:\n  - ref: ok\n    persona: reviewer\n    title: fine\n  - ref: k\n    persona: reviewer\n    title: K\n    idempotencyKey: "key-\\udc00"\n',
    );
    const res = await roster(["add", "--file", files.path("lone-key.yaml"), "--db", db], { cwd: files.dir });
    expect(res.stderr).toMatch(/^roster: VALIDATION: \S*lone-key\.yaml: tasks\[1\] \(ref "k"\)\.idempotencyKey: not well-formed Unicode \(lone surrogate at index 4\)\n$/);
    expect(res.code).toBe(2);
    expect(await tableCounts(db)).toEqual(baseline);
  });

  it("add --payload with a lone surrogate in a nested key, named under --payload", async () => {
    const res = await roster(["add", "--persona", "reviewer", "--title", "T", "--payload", '{"a": {"k\\udc00": 1}}', "--db", db], { cwd: files.dir });
    expect(res.stderr).toBe('roster: VALIDATION: --payload.a: key "k\\udc00": not well-formed Unicode (lone surrogate at index 1)\n');
    expect(res.code).toBe(2);
    expect(await tableCounts(db)).toEqual(baseline);
  });

  it("MCP create_tasks with a lone surrogate in a title answers isError naming the field", async () => {
    const own = template.copy();
    const server = await spawnMcpClient({ db: own.db, profile: "planner", name: "lone-surrogate" });
    try {
      const before = await tableCounts(own.db);
      const result = (await server.client.callTool({ name: "create_tasks", arguments: { tasks: [{ persona: "reviewer", title: "x\ud800" }] } })) as CallToolResult;
      const body = (result.content[0] as { text: string }).text;
      expect(result.isError, body).toBe(true);
      expect(body).toContain("tasks[0].title: not well-formed Unicode (lone surrogate at index 1)");
      expect(await tableCounts(own.db)).toEqual(before);
    } finally {
      await server.close();
      own.cleanup();
    }
  });
});
