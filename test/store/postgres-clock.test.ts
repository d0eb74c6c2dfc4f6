import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { hostClock, setSystemClockOffset, systemClock } from "../../src/clock.js";
import { openStore } from "../../src/store/index.js";
import { usePostgres } from "../helpers/postgres.js";

/**
 * One clock (issue 19; docs/ARCHITECTURE.md rule 16): an open PostgreSQL store makes
 * the server's clock systemClock's reference, measured against the server's
 * clock_timestamp(); a host clock that is off (config.clockOffsetMs) shows in the
 * measurement and not in systemClock; closing the store gives systemClock back to
 * the host's clock.
 */
const server = await usePostgres();

/** `read()` minus the wall clock, bracketed by wall-clock reads (a loaded machine can stop this thread between any two). */
function offsetOf(read: () => number): { min: number; max: number } {
  const before = Date.now();
  const value = read();
  const after = Date.now();
  return { min: value - after, max: value - before };
}

afterEach(() => setSystemClockOffset(0));

describe.skipIf(!server.available)("postgres: the server's clock", () => {
  it("stamps on the server's time while the store is open, whatever the host's clock says, and lets go at close", async () => {
    setSystemClockOffset(90_000);
    const host = offsetOf(() => hostClock.now());
    expect(host.min).toBeLessThanOrEqual(90_000);
    expect(host.max).toBeGreaterThanOrEqual(90_000);
    const openedAt = performance.now();
    const store = await openStore({ path: server.url() });
    const openMs = performance.now() - openedAt;
    try {
      const measured = store.clockOffset!();
      // The server runs on this machine's clock: this host is 90 s ahead of it, measured to half the
      // round trip it kept (the midpoint rule; 2 ms for whole-ms clocks and rounding), however long a loaded machine made it.
      expect(measured.rttMs).toBeGreaterThan(0);
      expect(measured.rttMs).toBeLessThanOrEqual(openMs);
      const error = measured.rttMs / 2 + 2;
      expect(Math.abs(measured.hostOffsetMs + 90_000)).toBeLessThanOrEqual(error);
      // systemClock now reads the server's time: next to a fresh clock_timestamp() from another connection.
      const admin = new pg.Client({ connectionString: server.url() });
      await admin.connect();
      try {
        const sentAt = systemClock.now();
        const serverMs = Number((await admin.query<{ ms: number }>("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms")).rows[0]!.ms);
        const backAt = systemClock.now();
        expect(serverMs).toBeGreaterThanOrEqual(sentAt - error - 1);
        expect(serverMs).toBeLessThanOrEqual(backAt + error + 1);
      } finally {
        await admin.end();
      }
    } finally {
      await store.close();
    }
    const after = offsetOf(() => systemClock.now());
    expect(after.min).toBeLessThanOrEqual(90_000);
    expect(after.max).toBeGreaterThanOrEqual(90_000);
  });

  it("refuses to open, naming the URL without its password, when the server cannot be reached to measure", async () => {
    const url = new URL(server.url());
    url.password = "not-printed";
    url.port = "1";
    await expect(openStore({ path: url.toString() })).rejects.toMatchObject({ code: "DATABASE_IO" });
    await expect(openStore({ path: url.toString() })).rejects.not.toThrow(/not-printed/);
  });
});
