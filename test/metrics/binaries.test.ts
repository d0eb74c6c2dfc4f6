import { afterEach, describe, expect, it } from "vitest";
import { findBinary, requireBinaryInCi } from "./binaries.js";

describe("the promtool and prometheus tests' binary check", () => {
  const saved = process.env.CI;
  afterEach(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });

  it("fails, rather than skips, when a binary is missing and CI=true", () => {
    process.env.CI = "true";
    expect(() => requireBinaryInCi("promtool", null)).toThrow(/promtool is not installed, and CI=true/);
  });

  it("lets a machine outside CI without the binary skip", () => {
    delete process.env.CI;
    expect(() => requireBinaryInCi("promtool", null)).not.toThrow();
  });

  it("finds a binary on PATH and not one that does not exist", () => {
    expect(findBinary("node")).not.toBeNull();
    expect(findBinary("roster-no-such-binary-obs")).toBeNull();
  });
});
