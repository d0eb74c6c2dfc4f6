import type { Readable, Writable } from "node:stream";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { McpContext, McpProfile } from "./context.js";
import { createMcpServer } from "./server.js";

export interface McpStdioSession {
  /** Resolves when the client goes away (stdin ends) or close() is called. */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

/**
 * One MCP session over stdin/stdout (`roster mcp`). stdout carries JSON-RPC only:
 * logs go to stderr. The SDK's transport does not watch for the end of stdin, so
 * this does: a client that exits closes the session.
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
  transport.onclose = () => resolveClosed();
  const onEnd = (): void => void close();
  stdin.once("end", onEnd);
  stdin.once("close", onEnd);
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      stdin.off("end", onEnd);
      stdin.off("close", onEnd);
      await server.close();
      resolveClosed();
    })());
  await server.connect(transport);
  return { closed, close };
}
