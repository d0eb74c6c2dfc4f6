import { describe, expect, it } from "vitest";
import { CONFIG_ENV, configSource, loadConfig } from "../../src/config.js";
import { RosterError } from "../../src/errors.js";

/** One table of environment variables (issue 14): reading them and naming them in errors cannot drift apart. */
describe("config from the environment", () => {
  it("names the variable a bad value came from, for every variable (ROSTER_BUSY_TIMEOUT_MS=-1 used to say only config.busyTimeoutMs)", () => {
    expect(() => loadConfig({}, { ROSTER_BUSY_TIMEOUT_MS: "-1" })).toThrow(/^ROSTER_BUSY_TIMEOUT_MS: .*got "-1"/);
    for (const { variable, parse } of CONFIG_ENV) {
      if (parse === "string") continue;
      try {
        loadConfig({}, { [variable]: parse === "int" ? "-99999999999" : "maybe" });
        throw new Error(`${variable}: accepted a bad value`);
      } catch (error) {
        expect(error, variable).toBeInstanceOf(RosterError);
        expect((error as RosterError).message.startsWith(`${variable}: `), (error as Error).message).toBe(true);
      }
    }
  });

  it("reads every variable of the table into its field", () => {
    const config = loadConfig(
      {},
      {
        ROSTER_DB: "x.db",
        ROSTER_PERSONAS: "p",
        ROSTER_LOG_LEVEL: "warn",
        ROSTER_SYNCHRONOUS: "full",
        ROSTER_CONCURRENCY: "7",
        ROSTER_THREADS: "3",
        ROSTER_BUSY_TIMEOUT_MS: "1234",
        ROSTER_WORKER_HEAP_LIMIT_MB: "512",
        ROSTER_CLOCK_OFFSET_MS: "0",
        ROSTER_MAX_PAYLOAD_BYTES: "2048",
        ROSTER_ALLOW_ABSOLUTE_MODULES: "true",
        ROSTER_MCP_TOKEN: "t",
      },
    );
    expect(config).toMatchObject({
      dbPath: "x.db",
      personasDir: "p",
      logLevel: "warn",
      synchronous: "FULL",
      concurrency: 7,
      threads: 3,
      busyTimeoutMs: 1234,
      workerHeapLimitMb: 512,
      clockOffsetMs: 0,
      maxPayloadBytes: 2048,
      allowAbsoluteModules: true,
      mcp: { token: "t" },
    });
  });

  it("records where each value came from: the flag over the variable, nothing for a default", () => {
    const flagNames = { dbPath: "--db", personasDir: "--personas" };
    const fromEnv = loadConfig({}, { ROSTER_DB: "x.db", ROSTER_PERSONAS: "p" }, { flagNames });
    expect([configSource(fromEnv, "dbPath"), configSource(fromEnv, "personasDir")]).toEqual(["ROSTER_DB", "ROSTER_PERSONAS"]);
    const fromFlag = loadConfig({ dbPath: "y.db" }, { ROSTER_DB: "x.db" }, { flagNames });
    expect([configSource(fromFlag, "dbPath"), configSource(fromFlag, "personasDir")]).toEqual(["--db", undefined]);
  });
});

describe("config intervals", () => {
  it("refuses a poll or reap interval past 2^31 - 1 ms, which a setInterval would run every 1 ms", () => {
    expect(() => loadConfig({ pollIntervalMs: 3_000_000_000, reapIntervalMs: 3_000_000_000 }, {})).toThrow(
      /^config\.pollIntervalMs: Too big: expected number to be <=2147483647; config\.reapIntervalMs: Too big/,
    );
    expect(loadConfig({ pollIntervalMs: 2 ** 31 - 1 }, {}).pollIntervalMs).toBe(2 ** 31 - 1);
  });
});
