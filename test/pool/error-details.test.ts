import { expect, it } from "vitest";
import { ERROR_DETAILS_MAX_CHARS, RosterError, toErrorObject } from "../../src/errors.js";

/**
 * An adapter's thrown Error keeps its `details` as JSON keeps them (src/errors.ts toErrorObject):
 * what crosses from the worker thread (a structured clone) and is stored. The supervisor path is
 * test/adapters/provider-limits.test.ts.
 */
it("keeps a plain Error's details as JSON keeps them, drops what JSON cannot hold, and keeps only the provider-limit fields of details too big or not JSON", () => {
  const plain = Object.assign(new Error("429"), { details: { failure: "rate-limit", retryAfterMs: 500, when: new Date(0), call: () => 1 } });
  const object = toErrorObject(plain);
  expect(object.details).toEqual({ failure: "rate-limit", retryAfterMs: 500, when: "1970-01-01T00:00:00.000Z" });
  expect(() => structuredClone(object)).not.toThrow();

  const big = Object.assign(new Error("429"), { details: { failure: "usage-limit", resetAt: 1_800_000_000_000, body: "x".repeat(ERROR_DETAILS_MAX_CHARS) } });
  expect(toErrorObject(big).details).toEqual({ failure: "usage-limit", resetAt: 1_800_000_000_000, detailsDropped: `over ${ERROR_DETAILS_MAX_CHARS} characters as JSON` });

  const unjson = Object.assign(new Error("429"), { details: { failure: "rate-limit", n: 10n } });
  expect(toErrorObject(unjson).details).toMatchObject({ failure: "rate-limit", detailsDropped: expect.stringMatching(/^not JSON: /) });

  expect(toErrorObject(Object.assign(new Error("x"), { details: "a string" })).details).toBeUndefined();
  expect(toErrorObject(new Error("x")).details).toBeUndefined();
  expect(toErrorObject(new RosterError("ADAPTER_FAILED", "x", { details: { a: 1 } })).details).toEqual({ a: 1 });
});
