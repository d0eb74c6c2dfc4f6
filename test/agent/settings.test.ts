import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveProfile } from "../../src/adapters/agent/launch.js";
import { checkBaseUrl, codexArgs, prepareSettings } from "../../src/adapters/agent/settings.js";
import { RosterError } from "../../src/errors.js";
import { closedPort, startModelServer } from "../agent-cli/model-server.js";
import { agentConfig } from "./helpers.js";

const settingsFor = (input: Record<string, unknown>, baseEnv: NodeJS.ProcessEnv = {}) => {
  const config = agentConfig(input) as Extract<ReturnType<typeof agentConfig>, { kind: "agent" }>;
  return prepareSettings({ profile: resolveProfile(config), config, baseEnv, personaId: "p" });
};

describe("agent CLI settings per attempt", () => {
  it("passes claude the base URL and the key from the persona's variable, with its own retries off", async () => {
    const closed = await closedPort();
    const s = await settingsFor({ profile: "claude", baseUrl: `http://127.0.0.1:${closed}/`, apiKeyEnv: "TEAM_KEY" }, { TEAM_KEY: "k1" }).catch((e: unknown) => e);
    // Nothing listens there: the check fails first, retryable, as unreachable.
    expect(s).toBeInstanceOf(RosterError);
    expect((s as RosterError).details).toMatchObject({ failure: "unreachable" });
    const server = await startModelServer({ kind: "text", text: "" });
    try {
      const ok = await settingsFor({ profile: "claude", baseUrl: server.url, apiKeyEnv: "TEAM_KEY" }, { TEAM_KEY: "k1" });
      expect(ok.env).toMatchObject({ ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "k1", CLAUDE_CODE_MAX_RETRIES: "0", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1" });
      expect(ok.home).toBeNull();
    } finally {
      await server.close();
    }
  });

  it("fails not retryable, naming the variable, when apiKeyEnv is not set", async () => {
    const error = await settingsFor({ profile: "gemini", apiKeyEnv: "NO_SUCH_KEY_VAR" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RosterError);
    expect((error as RosterError).retryable).toBe(false);
    expect((error as RosterError).message).toContain("NO_SUCH_KEY_VAR");
  });

  it("declares codex's provider with its retries off, by -c overrides", () => {
    const config = agentConfig({ profile: "codex", baseUrl: "http://127.0.0.1:8080/v1", apiKeyEnv: "TEAM_KEY" }) as Parameters<typeof codexArgs>[0];
    const args = codexArgs(config);
    expect(args).toContain('model_provider="roster"');
    const provider = args.find((a) => a.startsWith("model_providers.roster="))!;
    for (const part of ['base_url = "http://127.0.0.1:8080/v1"', 'env_key = "TEAM_KEY"', 'wire_api = "responses"', "request_max_retries = 0", "stream_max_retries = 0"]) expect(provider).toContain(part);
    expect(codexArgs(agentConfig({ profile: "codex" }) as Parameters<typeof codexArgs>[0])).not.toContain('model_provider="roster"');
  });

  it("makes a fresh home with gemini's settings for the attempt and removes it afterwards", async () => {
    const s = await settingsFor({ profile: "gemini", home: "fresh" });
    expect(s.env).toMatchObject({ HOME: s.home, GEMINI_CLI_HOME: s.home, GEMINI_CLI_TRUST_WORKSPACE: "true" });
    const settings = JSON.parse(readFileSync(join(s.home!, ".gemini", "settings.json"), "utf8"));
    expect(settings).toMatchObject({ general: { maxAttempts: 1, retryFetchErrors: false }, telemetry: { enabled: false }, privacy: { usageStatisticsEnabled: false } });
    await s.cleanup();
    expect(existsSync(s.home!)).toBe(false);
  });

  it("accepts a base URL that takes connections and refuses a closed port", async () => {
    const port = await closedPort();
    await expect(checkBaseUrl(`http://127.0.0.1:${port}`, "codex")).rejects.toMatchObject({ retryable: true, details: { failure: "unreachable" } });
  });
});
