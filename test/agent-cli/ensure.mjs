// Installs the real agent CLI tier (test/agent-cli: Claude Code, Codex, Gemini CLI, ~760 MB)
// before `npm test` when it is missing or its lock changed, so `npm test` alone is the whole
// truth on a fresh clone. Offline outside CI, a failed install is reported and the tier's
// tests skip (they say why); under CI=true it fails the run.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = dirname(fileURLToPath(import.meta.url));
const lock = join(dir, "package-lock.json");
const stamp = join(dir, "node_modules", ".roster-lock-sha256");
const want = createHash("sha256").update(readFileSync(lock)).digest("hex");
if (existsSync(stamp) && readFileSync(stamp, "utf8") === want) process.exit(0);
process.stderr.write("roster: installing the agent CLI test tier (npm ci --prefix test/agent-cli) …\n");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const result = spawnSync(npm, ["ci", "--prefix", dir, "--no-audit", "--no-fund"], { stdio: "inherit" });
if (result.status === 0) {
  writeFileSync(stamp, want);
  process.exit(0);
}
process.stderr.write("roster: the agent CLI test tier could not be installed; its tests will skip (and fail under CI=true)\n");
process.exit(process.env.CI === "true" ? 1 : 0);
