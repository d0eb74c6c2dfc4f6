import type { Readable, Writable } from "node:stream";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { McpContext, McpProfile } from "./context.js";
import { WAIT_MS_MAX } from "./schemas.js";
import { connectMcp, createMcpServer, endMcpSession } from "./server.js";

/** Longest wait, after stdin ends, for answers still being worked on (a claim may wait WAIT_MS_MAX). */
export const DRAIN_MS_MAX = WAIT_MS_MAX + 5_000;

export interface McpStdioSession {
  /** Resolves when the client goes away (stdin ends) or close() is called. */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

/**
 * One MCP session over stdin/stdout (`roster mcp`). stdout carries JSON-RPC only:
 * logs go to stderr. The SDK's transport does not watch for the end of stdin, so
 * this does: a client that exits closes the session, once the requests it sent
 * have been answered.
 */
export async function serveMcpStdio(options: {
  context: McpContext;
  profile?: McpProfile;
  stdin?: Readable;
  stdout?: Writable;
}): Promise<McpStdioSession> {
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const server = await createMcpServer(options.context, options.profile === undefined ? {} : { profile: options.profile });
  const transport = new StdioServerTransport(stdin, stdout);
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  transport.onclose = () => void close();
  // Requests still being answered when stdin ends (a client that pipes requests and
  // closes) get their answers before the session closes; bounded by DRAIN_MS_MAX.
  const pending = new Set<string | number>();
  let drained: (() => void) | null = null;
  let ended = false;
  const onEnd = (): void => {
    if (ended) return; // "end" and then "close"
    ended = true;
    if (pending.size === 0) return void close();
    const timer = setTimeout(() => void close(), DRAIN_MS_MAX);
    timer.unref();
    drained = () => {
      clearTimeout(timer);
      void close();
    };
  };
  stdin.once("end", onEnd);
  stdin.once("close", onEnd);
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    // The body starts on a later tick, so `closing` is set before server.close() closes the
    // transport, whose onclose calls close() again.
    (closing ??= Promise.resolve().then(async () => {
      stdin.off("end", onEnd);
      stdin.off("close", onEnd);
      await server.close();
      // The client is gone: its agent is deregistered and its leases go back to the queue.
      await endMcpSession(server);
      resolveClosed();
    }));
  const answered = (id: string | number): void => {
    if (pending.delete(id) && pending.size === 0) drained?.();
  };
  // A cancelled request gets no answer (the SDK drops it): it is not waited for. Its
  // handler, aborted, is waited for by the session's end (McpSession.call).
  await connectMcp(server, transport, { onCancelled: answered });
  const receive = transport.onmessage;
  // Wrapped after connect(), which installs the SDK's own handler: count requests in
  // and answers out, without changing either.
  transport.onmessage = (message: JSONRPCMessage) => {
    if ("method" in message && "id" in message) pending.add(message.id);
    receive?.(message);
  };
  const send = transport.send.bind(transport);
  transport.send = async (message: JSONRPCMessage) => {
    await send(message);
    if (!("method" in message) && "id" in message && message.id !== undefined) answered(message.id);
  };
  return { closed, close };
}
