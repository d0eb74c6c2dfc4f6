import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy between roster and PostgreSQL whose link a test can cut and restore,
 * the way a pulled cable or `ip link set … down` does: while cut nothing is
 * refused or reset, bytes simply stop arriving (the proxy holds them, as TCP
 * would keep retransmitting), and new connections get no answer; restored, the
 * held bytes go through in order and held connections are made. A side that
 * gives up (a connect or statement timeout) closes its socket, and the proxy
 * closes the other side. Cut with "reset" instead, every connection is reset and
 * new ones are closed at once, as when the server restarts or a firewall rejects.
 */
export interface CutProxy {
  port: number;
  /** The URL with its host and port replaced by the proxy's. */
  url(target: string): string;
  /** "drop" (default): bytes stop; "reset": connections are closed and refused. */
  cut(mode?: "drop" | "reset"): void;
  restore(): void;
  /**
   * The next statement whose bytes carry `marker` reaches the server, and its answer is
   * withheld: once the server has answered it whole (ReadyForQuery, idle: the statement's
   * transaction is over, committed or not), that connection is reset, so the client never
   * learns what the server did, as when a link fails right after a commit. Resolves when the
   * connection was reset. One statement per call.
   */
  loseAnswer(marker: string): Promise<void>;
  /**
   * The next statement whose bytes carry `marker` reaches the server, and at once the client's
   * connection is reset while the server's session stays connected (it never sees its client
   * go), so the statement runs on, may commit, and its answer is discarded: a client that gave
   * up on a statement the server is still running. Resolves when the client's connection was reset.
   */
  abandon(marker: string): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | null;
  /** Bytes held while cut, in arrival order, with the socket they are for. */
  held: Array<{ to: "client" | "upstream"; chunk: Buffer }>;
  /** Set by loseAnswer (the answer's bytes withheld, `lost` run once it is whole) or abandon (every answer discarded). */
  losing?: { tail: Buffer; lost: () => void; abandoned: boolean };
}

/** The server's ReadyForQuery message with status idle (no transaction open): the end of a statement's answer. */
const READY_IDLE = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);

export async function startCutProxy(targetHost: string, targetPort: number): Promise<CutProxy> {
  let isCut = false;
  let refusing = false;
  const pairs = new Set<Pair>();
  let losing: { marker: Buffer; lost: () => void; abandon: boolean } | null = null;

  const send = (pair: Pair, to: "client" | "upstream", chunk: Buffer) => {
    if (to === "upstream" && losing !== null && chunk.includes(losing.marker)) {
      const { lost, abandon } = losing;
      pair.losing = { tail: Buffer.alloc(0), lost, abandoned: abandon };
      losing = null;
      if (abandon) {
        forward(pair, to, chunk);
        // The client goes; the server's session stays (closed with the proxy).
        pair.client.removeAllListeners("close").removeAllListeners("error").on("error", () => {});
        pair.client.destroy();
        lost();
        return;
      }
    }
    if (to === "client" && pair.losing?.abandoned === true) return;
    if (to === "client" && pair.losing !== undefined) {
      const tail = Buffer.concat([pair.losing.tail, chunk]).subarray(-READY_IDLE.length);
      pair.losing.tail = tail;
      if (tail.equals(READY_IDLE)) {
        const lost = pair.losing.lost;
        drop(pair);
        lost();
      }
      return;
    }
    forward(pair, to, chunk);
  };
  const forward = (pair: Pair, to: "client" | "upstream", chunk: Buffer) => {
    const socket = to === "client" ? pair.client : pair.upstream;
    if (isCut || socket === null || pair.held.length > 0) {
      pair.held.push({ to, chunk });
      flush(pair);
    } else socket.write(chunk);
  };
  const drop = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  };
  const link = (pair: Pair) => {
    const upstream = connect(targetPort, targetHost);
    pair.upstream = upstream;
    upstream.on("data", (chunk: Buffer) => send(pair, "client", chunk));
    upstream.on("error", () => drop(pair));
    upstream.on("close", () => drop(pair));
    upstream.on("connect", () => flush(pair));
  };
  const flush = (pair: Pair) => {
    if (isCut || pair.upstream === null || pair.upstream.connecting) return;
    for (const { to, chunk } of pair.held.splice(0)) (to === "client" ? pair.client : pair.upstream).write(chunk);
  };

  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const pair: Pair = { client, upstream: null, held: [] };
    pairs.add(pair);
    client.on("data", (chunk: Buffer) => send(pair, "upstream", chunk));
    client.on("error", () => drop(pair));
    client.on("close", () => drop(pair));
    if (!isCut) link(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    port,
    url: (target) => {
      const u = new URL(target);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    cut: (mode = "drop") => {
      isCut = true;
      if (mode !== "reset") return;
      refusing = true;
      for (const pair of [...pairs]) drop(pair);
    },
    restore: () => {
      isCut = false;
      refusing = false;
      for (const pair of pairs) {
        if (pair.upstream === null) link(pair);
        else flush(pair);
      }
    },
    loseAnswer: (marker) =>
      new Promise<void>((resolve) => {
        losing = { marker: Buffer.from(marker), lost: resolve, abandon: false };
      }),
    abandon: (marker) =>
      new Promise<void>((resolve) => {
        losing = { marker: Buffer.from(marker), lost: resolve, abandon: true };
      }),
    close: async () => {
      for (const pair of [...pairs]) drop(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
