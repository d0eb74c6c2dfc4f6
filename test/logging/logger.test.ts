import { join } from "node:path";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { RosterError } from "../../src/errors.js";
import { createLogger, parseLogLevel, personaSecretValues, REDACTED, SecretValues, taskLogger } from "../../src/logging/index.js";
import { parsePersonaFile } from "../../src/personas/load.js";

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "obs-personas", "deployer.md");
const ENV_SECRETS = ["s3cr3t-deploy-token-4242", "sk-obs-fixture-0123456789"];
const MCP_TOKEN = "mcp-bearer-token-obs-9876";

function capture(options: { level?: string; pretty?: boolean; secrets?: SecretValues } = {}) {
  const lines: string[] = [];
  const logger = createLogger({ pretty: false, ...options, destination: { write: (line: string) => lines.push(line) } });
  return { logger, lines, text: () => lines.join("") };
}

describe("the logger", () => {
  it("never writes a secret from a persona's shell adapter env, whether logged as a field, in a message or in an error", () => {
    const persona = parsePersonaFile(FIXTURE, readFileSync(FIXTURE, "utf8"));
    const secrets = new SecretValues(personaSecretValues([persona]));
    for (const pretty of [false, true]) {
      const { logger, text } = capture({ pretty, secrets });
      logger.info({ persona }, "persona loaded");
      logger.info({ adapter: persona.adapter }, "spawning adapter");
      logger.warn(`spawn failed with DEPLOY_TOKEN=${ENV_SECRETS[0]}`);
      logger.error({ err: new Error(`child said: ${ENV_SECRETS[1]}`) }, "adapter crashed");
      taskLogger(logger, { taskId: 1, persona: "deployer" }).child({ env: persona.adapter.kind === "shell" ? persona.adapter.env : {} }).info("bound env");

      const out = text();
      for (const secret of ENV_SECRETS) expect(out, `pretty=${pretty}`).not.toContain(secret);
      expect(out).toContain(REDACTED);
      expect(out).toContain("DEPLOY_TOKEN");
      expect(out).toContain("spawning adapter");
    }
  });

  it("redacts the env of a shell adapter by key even when nobody registered its values", () => {
    const persona = parsePersonaFile(FIXTURE, readFileSync(FIXTURE, "utf8"));
    const { logger, lines } = capture();
    logger.info({ persona }, "persona loaded");
    const line = JSON.parse(lines[0]!) as { persona: { adapter: { env: Record<string, string>; command: string } } };
    expect(line.persona.adapter.env).toEqual({ DEPLOY_TOKEN: REDACTED, OPENAI_API_KEY: REDACTED });
    expect(line.persona.adapter.command).toBe("node");
  });

  it("never writes the MCP token, whether logged in the config, as an Authorization header or in a message", () => {
    const config = loadConfig({}, { ROSTER_MCP_TOKEN: MCP_TOKEN });
    const secrets = new SecretValues([config.mcp.token!]);
    const { logger, text } = capture({ secrets });
    logger.info({ config }, "config loaded");
    logger.info({ headers: { authorization: `Bearer ${MCP_TOKEN}`, accept: "application/json" } }, "mcp request");
    logger.warn(`client sent a bad token: ${MCP_TOKEN}`);
    const unregistered = capture();
    unregistered.logger.info({ config, mcpToken: MCP_TOKEN, apiKey: MCP_TOKEN, password: MCP_TOKEN }, "config");
    unregistered.logger.info(`Authorization: Bearer ${MCP_TOKEN}`);

    expect(text()).not.toContain(MCP_TOKEN);
    expect(unregistered.text()).not.toContain(MCP_TOKEN);
    expect(text()).toContain("application/json");
  });

  it("keeps fields that only look like secrets' neighbours", () => {
    const { logger, lines } = capture();
    logger.info({ idempotencyKey: "k1", tokens: 12, keyword: "x", persona: "coder" }, "enqueued");
    expect(JSON.parse(lines[0]!)).toMatchObject({ idempotencyKey: "k1", tokens: 12, keyword: "x", persona: "coder" });
  });

  it("writes JSON lines that carry task id, persona, attempt and agent id from a task's child logger", () => {
    const { logger, lines } = capture();
    taskLogger(logger, { taskId: 42, persona: "coder", attempt: 2, agentId: "sup-1" }).info("task started");
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: "task started", taskId: 42, persona: "coder", attempt: 2, agentId: "sup-1", level: 30, name: "roster" });
  });

  it("writes readable, non-JSON lines when pretty", () => {
    const { logger, lines } = capture({ pretty: true });
    logger.info({ taskId: 7 }, "task completed");
    expect(lines[0]).toContain("task completed");
    expect(lines[0]).toContain("INFO");
    expect(() => JSON.parse(lines[0]!)).toThrow();
  });

  it("drops lines below the level", () => {
    const { logger, lines } = capture({ level: "warn" });
    logger.info("hidden");
    logger.warn("shown");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("shown");
  });

  it("takes its level from ROSTER_LOG_LEVEL through config, and rejects an unknown level by name", () => {
    expect(loadConfig({}, { ROSTER_LOG_LEVEL: "debug" }).logLevel).toBe("debug");
    expect(loadConfig({ logLevel: "error" }, { ROSTER_LOG_LEVEL: "debug" }).logLevel).toBe("error");
    expect(() => parseLogLevel("loud")).toThrow(RosterError);
    expect(() => parseLogLevel("loud")).toThrow(/--log-level: must be one of trace, debug, info/);
    expect(() => createLogger({ level: "loud", destination: { write: () => true } })).toThrow(/log level/);
  });
});

describe("log lines fed by events", () => {
  it("logs a failed task as a warning through a child logger carrying task id, persona and attempt", async () => {
    const { logEvents } = await import("../../src/logging/index.js");
    const { StoreEventBus } = await import("../../src/store/index.js");
    const events = new StoreEventBus();
    const { logger, lines } = capture({ level: "info" });
    const off = logEvents({ logger, store: { events } });
    events.emit("task:claimed", { agentId: "a", tasks: [{ id: 3, persona: "coder", attempt: 1, readyAt: 0, claimedAt: 5 }] });
    events.emit("task:failed", { taskId: 3, persona: "coder", attempt: 2, blocked: 1 });
    off();
    events.emit("task:failed", { taskId: 4, persona: "coder", attempt: 1, blocked: 0 });

    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, msg: "task failed", taskId: 3, persona: "coder", attempt: 2, blocked: 1 });
  });
});
