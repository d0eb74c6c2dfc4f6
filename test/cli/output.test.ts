import { afterEach, describe, expect, it, vi } from "vitest";
import { ERROR_CODES, RosterError, fromErrorObject } from "../../src/errors.js";
import { exitCodeFor, printError } from "../../src/cli/output.js";

/** The CLI's one error line and exit code (issue 12, defect 8: every error a user can meet is `roster: CODE: message`). */
describe("printError and exitCodeFor", () => {
  afterEach(() => vi.restoreAllMocks());

  function printed(error: unknown): string {
    let text = "";
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      text += String(chunk);
      return true;
    });
    printError(error);
    return text;
  }

  it("prints a RosterError as roster: CODE: message", () => {
    expect(printed(new RosterError("DISK_FULL", "tasks.enqueue: the disk holding x.db is full"))).toBe("roster: DISK_FULL: tasks.enqueue: the disk holding x.db is full\n");
  });

  it("labels an error that reached the CLI without a roster code INTERNAL instead of printing it bare", () => {
    expect(printed(new TypeError("Cannot open database because the directory does not exist"))).toBe(
      "roster: INTERNAL: Cannot open database because the directory does not exist\n",
    );
  });

  it("gives input errors exit 2 and failures exit 1, the database's included", () => {
    expect(exitCodeFor(new RosterError("VALIDATION", "x"))).toBe(2);
    expect(exitCodeFor(new RosterError("DATABASE_PATH_INVALID", "x"))).toBe(2);
    for (const code of ["DISK_FULL", "DATABASE_IO", "DATABASE_BUSY", "DATABASE_INVALID", "DATABASE_TOO_NEW", "DATABASE_READONLY", "LEASE_EXPIRED"] as const) {
      expect(exitCodeFor(new RosterError(code, "x")), code).toBe(1);
    }
    expect(exitCodeFor(new Error("plain"))).toBe(1);
  });

  it("classifies every error code as 1 or 2", () => {
    for (const code of ERROR_CODES) expect([1, 2], code).toContain(exitCodeFor(new RosterError(code, "x")));
  });

  it("keeps LEASE_EXPIRED when a stored error is rebuilt, instead of turning it into ADAPTER_FAILED", () => {
    expect(fromErrorObject({ name: "LeaseExpired", code: "LEASE_EXPIRED", message: "lease expired", retryable: true }).code).toBe("LEASE_EXPIRED");
  });
});
