import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runAgent } from "../../src/adapters/agent/index.js";
import { loadPersonaDir } from "../../src/personas/load.js";
import { adapterSchema } from "../../src/personas/schema.js";
import { makeContext, makeRepo, makeTask } from "../agent/helpers.js";
import type { ModelServer, TrapProxy } from "./model-server.js";
import { describeWithClis, openWorld, closeWorld, scriptedEnv, CLI_BIN, KEY_VAR, type World } from "./harness.js";

/**
 * Every persona in personas/examples/ runs as written on the pinned CLI it names: its
 * profile's flags and its own `args` are accepted (Codex 0.171 refuses `--full-auto`,
 * for one), and the CLI answers. Only what points it at the scripted server is added
 * (command, baseUrl, apiKeyEnv, a fresh home) and the workspace is left out.
 */
const EXAMPLES = resolve(dirname(fileURLToPath(import.meta.url)), "../../personas/examples");
const run = describeWithClis(["claude", "codex", "gemini"]);

let server: ModelServer;
let trap: TrapProxy;
let dir: World["dir"];
beforeAll(async () => {
  ({ server, trap, dir } = await openWorld({ kind: "text", text: "EXAMPLE OK" }, "agent-cli-examples"));
});
afterAll(() => closeWorld({ server, trap, dir }));

const examples = loadPersonaDir(EXAMPLES);

run("the example personas on the pinned CLIs", () => {
  it("are all agent personas", () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
    expect(examples.every((p) => p.adapter.kind === "agent")).toBe(true);
  });

  it.each(examples.map((p) => [p.id, p] as const))("%s runs as written", async (_id, persona) => {
    const adapter = persona.adapter;
    if (adapter.kind !== "agent") throw new Error("not an agent persona");
    const { workspace: _workspace, cwd: _cwd, role: _role, ...rest } = adapter;
    const cli = adapter.profile;
    const config = adapterSchema.parse({
      ...rest,
      command: join(CLI_BIN, cli),
      baseUrl: cli === "codex" ? `${server.url}/v1` : server.url,
      apiKeyEnv: KEY_VAR,
      home: "fresh",
    });
    const repo = makeRepo(dir.path, persona.id);
    const ctx = makeContext(config, { dir: repo, id: persona.id, definition: persona.definition });
    const output = await runAgent(makeTask({ title: "Say OK", description: "Answer OK." }), ctx, { baseEnv: scriptedEnv(trap) });
    expect((output.result as { text: string }).text).toBe("EXAMPLE OK");
    expect(trap.seen).toEqual([]);
  });
});
