import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { listenHttp, serveHttp } from "../src/http-listen.js";

/**
 * The ports `roster start` binds before it opens the database (src/http-listen.ts): a bound
 * port answers 503 until its server takes it, then that server's answers; a port in use is
 * CONFIG_INVALID naming the server, the address and the flag.
 */
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) if (s.listening) s.close();
});

describe("listenHttp and serveHttp", () => {
  it("answers 503 (retry after a second) while roster starts, then the server's own answers", async () => {
    const target = { what: "metrics", host: "127.0.0.1", port: 0 };
    const bound = await listenHttp(target);
    servers.push(bound);
    const url = `http://127.0.0.1:${(bound.address() as AddressInfo).port}/`;
    const early = await fetch(url);
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toBe("1");
    const served = await serveHttp(bound, target, (_req, res) => res.end("ready"));
    expect(served).toBe(bound);
    const later = await fetch(url);
    expect(later.status).toBe(200);
    expect(await later.text()).toBe("ready");
  });

  it("refuses a port in use as CONFIG_INVALID naming the server, the address and what to set", async () => {
    const first = await listenHttp({ what: "mcp", host: "127.0.0.1", port: 0 });
    servers.push(first);
    const port = (first.address() as AddressInfo).port;
    await expect(listenHttp({ what: "mcp", host: "127.0.0.1", port, hint: "set --mcp-port" })).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: `mcp: cannot listen on 127.0.0.1:${port} (address in use); set --mcp-port`,
    });
  });
});
