import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { roster, rosterOk } from "../cli/helpers.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/** `roster ui` and `roster start --ui-*` refuse bad flags before they open or write anything. */
describe("roster ui and roster start --ui-port: bad input", () => {
  let temp: TempDir;
  let db: string;
  beforeAll(async () => {
    temp = makeTempDir("roster-ui-cli-");
    db = temp.path("roster.db");
    await rosterOk(["init", "--db", db, "--personas", temp.path("personas")], { cwd: temp.dir });
  });
  afterAll(() => temp?.cleanup());

  // Each command's message names its own flags: `roster ui` --host and --token, `roster start` --ui-host and --ui-token; ROSTER_UI_TOKEN when the token came from there.
  const cases: Array<[string, string[], number, RegExp, Record<string, string>?]> = [
    ["a non-loopback host without a token", ["ui", "--host", "0.0.0.0", "--port", "0"], 2, /^roster: CONFIG_INVALID: --host: 0\.0\.0\.0 is not a loopback address; serving the dashboard there needs a token \(--token or ROSTER_UI_TOKEN\)\n$/],
    ["a short token", ["ui", "--token", "abc", "--port", "0"], 2, /^roster: CONFIG_INVALID: --token: must be at least 8 characters\n$/],
    ["a short ROSTER_UI_TOKEN", ["ui", "--port", "0"], 2, /^roster: CONFIG_INVALID: ROSTER_UI_TOKEN: must be at least 8 characters\n$/, { ROSTER_UI_TOKEN: "abc" }],
    ["a port out of range", ["ui", "--port", "70000"], 2, /^roster: VALIDATION: --port: /],
    ["a bad --user", ["ui", "--port", "0", "--user", "a b"], 2, /^roster: VALIDATION: --user: /],
    ["--ui-host without --ui-port", ["start", "--ui-host", "0.0.0.0"], 2, /^roster: VALIDATION: --ui-host and --ui-token need --ui-port/],
    ["--ui-port off loopback without a token", ["start", "--ui-port", "0", "--ui-host", "0.0.0.0", "--no-metrics"], 2, /^roster: CONFIG_INVALID: --ui-host: 0\.0\.0\.0 is not a loopback address; serving the dashboard there needs a token \(--ui-token or ROSTER_UI_TOKEN\)\n$/],
    ["a short --ui-token", ["start", "--ui-port", "0", "--ui-token", "abc", "--no-metrics"], 2, /^roster: CONFIG_INVALID: --ui-token: must be at least 8 characters\n$/],
    ["a short ROSTER_UI_TOKEN on start", ["start", "--ui-port", "0", "--no-metrics"], 2, /^roster: CONFIG_INVALID: ROSTER_UI_TOKEN: must be at least 8 characters\n$/, { ROSTER_UI_TOKEN: "abc" }],
  ];
  for (const [name, args, code, message, env] of cases) {
    it(`refuses ${name}, writing nothing`, async () => {
      const before = readFileSync(db);
      const res = await roster([...args, "--db", db], { cwd: temp.dir, env: env ?? {} });
      expect(res.stderr).toMatch(message);
      expect(res.code).toBe(code);
      expect(readFileSync(db).equals(before)).toBe(true);
    });
  }

  it("refuses a database that is not there, leaving no file behind", async () => {
    const missing = temp.path("nope.db");
    const res = await roster(["ui", "--port", "0", "--db", missing], { cwd: temp.dir });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/^roster: /);
    expect(existsSync(missing)).toBe(false);
  });
});
