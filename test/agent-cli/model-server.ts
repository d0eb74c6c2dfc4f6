import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isAbsolute, join } from "node:path";

/**
 * A scripted model server for the real agent CLIs (node:http, nothing else), on
 * 127.0.0.1. It speaks just enough of three APIs for Claude Code, Codex and
 * Gemini CLI to run a whole turn against it:
 *
 * - Anthropic Messages: `HEAD /` (Claude Code's reachability probe) and
 *   `POST /v1/messages` with `stream: true` (SSE) or without;
 * - OpenAI Responses: `POST /v1/responses` (SSE);
 * - Gemini: `POST /v1beta/models/M:streamGenerateContent?alt=sse` (and
 *   `:generateContent`, `:countTokens`).
 *
 * What it answers is the scenario, swappable between runs. A `write` scenario asks
 * for a tool call that writes a file (Claude's Write, Codex's apply_patch or shell,
 * Gemini's write_file) and, once the request carries the tool's result, answers
 * with the text: the reply depends on the conversation, not on a request count, so
 * the extra calls a CLI makes (titles, routing) get sensible answers too. Failure
 * scenarios answer every request in each provider's own shape. Every request is
 * recorded for the tests to look at.
 */
export type Scenario =
  | { kind: "text"; text: string }
  | { kind: "write"; path: string; content: string; text: string }
  /**
   * Several turns, each spending the provider's USAGE: `steps` tool calls, one per reply (the k-th writes
   * `<path>.k`), then `text`. Each reply comes `delayMs` after its request, so a test can act between turns.
   */
  | { kind: "steps"; steps: number; path: string; text: string; delayMs: number }
  /** The tool call that writes the file, then (once its result comes back) a 500: an attempt that did some work and failed. */
  | { kind: "write-then-fail"; path: string; content: string }
  | { kind: "auth" }
  | { kind: "rate-limit"; retryAfterS: number }
  /** A plan's limit that resets at `resetAtMs`, or `resetInMs` after each request. */
  | { kind: "usage-limit"; resetAtMs: number; resetInMs?: undefined }
  | { kind: "usage-limit"; resetInMs: number; resetAtMs?: undefined }
  | { kind: "server-error" }
  | { kind: "hang" }
  /** The first `requests` model requests get `serve`, the rest `then` (a failure, then a recovery). */
  | { kind: "first"; requests: number; serve: Scenario; then: Scenario }
  /** The first route whose marker the request's body holds (e.g. a persona's definition), else `otherwise`. */
  | { kind: "route"; routes: Array<{ when: string; then: Scenario }>; otherwise: Scenario };

export type Provider = "anthropic" | "openai" | "gemini";

export interface RecordedRequest {
  provider: Provider | "other";
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface ModelServer {
  url: string;
  port: number;
  requests: RecordedRequest[];
  setScenario(scenario: Scenario): void;
  close(): Promise<void>;
}

/** Usage figures each provider reports per reply: realistic in size and in kind. */
export const USAGE = {
  anthropic: { input_tokens: 1_200, cache_creation_input_tokens: 300, cache_read_input_tokens: 2_400, output_tokens: 85 },
  openai: { input_tokens: 1_500, cached_tokens: 1_024, output_tokens: 90, reasoning_tokens: 32 },
  gemini: { promptTokenCount: 1_400, candidatesTokenCount: 80, cachedContentTokenCount: 600, thoughtsTokenCount: 24 },
} as const;

export const ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929";
export const OPENAI_MODEL = "gpt-5.5";
export const GEMINI_MODEL = "gemini-2.5-flash";

export async function startModelServer(initial: Scenario): Promise<ModelServer> {
  let current = initial;
  const requests: RecordedRequest[] = [];
  const hung = new Set<ServerResponse>();
  let seq = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      let body: unknown = raw;
      try {
        body = raw === "" ? null : (JSON.parse(raw) as unknown);
      } catch {
        // Not JSON: recorded as text.
      }
      const provider = providerOf(req);
      requests.push({ provider, method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      seq += 1;
      const scenario = resolveScenario(current, raw, provider !== "other");
      if (provider === "other") {
        if (req.method === "HEAD" || req.method === "GET") return void res.writeHead(200).end();
        return void res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      }
      if (scenario.kind === "hang") {
        hung.add(res);
        res.on("close", () => hung.delete(res));
        return;
      }
      const failure = scenario.kind === "write-then-fail" && toolHasRun(provider, body) ? failureOf(provider, { kind: "server-error" }) : failureOf(provider, scenario);
      if (failure !== null) {
        res.writeHead(failure.status, { "content-type": "application/json", ...failure.headers });
        res.end(JSON.stringify(failure.body));
        return;
      }
      const reply = replyFor(provider, scenario, body);
      const n = seq;
      const answer = (): void => {
        if (provider === "anthropic") anthropicReply(req, res, body, reply, n);
        else if (provider === "openai") openaiReply(res, body, reply, n);
        else geminiReply(req, res, reply);
      };
      if (scenario.kind === "steps" && !(provider === "gemini" && (req.url ?? "").includes(":countTokens"))) {
        const timer = setTimeout(answer, scenario.delayMs);
        res.on("close", () => clearTimeout(timer));
      } else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setScenario: (next) => {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hung) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Model requests each "first" scenario has served so far. */
const served = new WeakMap<Scenario, number>();

function resolveScenario(scenario: Scenario, raw: string, counts: boolean): Scenario {
  if (scenario.kind === "first") {
    const n = served.get(scenario) ?? 0;
    if (n >= scenario.requests) return resolveScenario(scenario.then, raw, counts);
    if (counts) served.set(scenario, n + 1);
    return resolveScenario(scenario.serve, raw, counts);
  }
  if (scenario.kind !== "route") return scenario;
  const route = scenario.routes.find((r) => raw.includes(r.when));
  return resolveScenario(route?.then ?? scenario.otherwise, raw, counts);
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function providerOf(req: IncomingMessage): Provider | "other" {
  const path = (req.url ?? "").split("?")[0]!;
  if (req.method === "POST" && path.endsWith("/v1/messages")) return "anthropic";
  if (req.method === "POST" && path.endsWith("/responses")) return "openai";
  if (req.method === "POST" && /\/models\/[^/]+:(streamGenerateContent|generateContent|countTokens)$/.test(path)) return "gemini";
  return "other";
}

// ---------------------------------------------------------------- failures

interface Failure {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

function failureOf(provider: Provider, scenario: Scenario): Failure | null {
  const resetAtMs = scenario.kind === "usage-limit" ? (scenario.resetAtMs ?? Date.now() + scenario.resetInMs!) : 0;
  const resetS = Math.ceil(resetAtMs / 1000);
  switch (scenario.kind) {
    case "auth":
      if (provider === "anthropic") return { status: 401, headers: {}, body: { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } } };
      if (provider === "openai")
        return { status: 401, headers: {}, body: { error: { message: "Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys.", type: "invalid_request_error", param: null, code: "invalid_api_key" } } };
      return {
        status: 400,
        headers: {},
        body: { error: { code: 400, message: "API key not valid. Please pass a valid API key.", status: "INVALID_ARGUMENT", details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com" }] } },
      };
    case "rate-limit": {
      const retry = String(scenario.retryAfterS);
      if (provider === "anthropic")
        return { status: 429, headers: { "retry-after": retry }, body: { type: "error", error: { type: "rate_limit_error", message: "This request would exceed the rate limit for your organization of 50 requests per minute." } } };
      if (provider === "openai")
        return { status: 429, headers: { "retry-after": retry }, body: { error: { message: "Rate limit reached for gpt-5-codex on requests per min (RPM): Limit 50, Used 50, Requested 1.", type: "requests", param: null, code: "rate_limit_exceeded" } } };
      return {
        status: 429,
        headers: { "retry-after": retry },
        body: {
          error: {
            code: 429,
            message: "Resource has been exhausted (e.g. check quota).",
            status: "RESOURCE_EXHAUSTED",
            details: [
              { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests", quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier" }] },
              { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${retry}s` },
            ],
          },
        },
      };
    }
    case "usage-limit":
      if (provider === "anthropic")
        return {
          status: 429,
          headers: { "anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": String(resetS), "x-should-retry": "false" },
          body: { type: "error", error: { type: "rate_limit_error", message: "This request would exceed your account's rate limit. Please try again later." } },
        };
      if (provider === "openai")
        return { status: 429, headers: {}, body: { error: { type: "usage_limit_reached", message: "The usage limit has been reached", plan_type: "plus", resets_at: resetS } } };
      return {
        status: 429,
        headers: {},
        body: {
          error: {
            code: 429,
            message: "You exceeded your current quota, please check your plan and billing details.",
            status: "RESOURCE_EXHAUSTED",
            details: [
              { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests", quotaId: "GenerateRequestsPerDayPerProjectPerModel-FreeTier", quotaDimensions: { location: "global", model: GEMINI_MODEL }, quotaValue: "250" }] },
              { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${Math.max(1, Math.ceil((resetAtMs - Date.now()) / 1000))}s` },
            ],
          },
        },
      };
    case "server-error":
      if (provider === "anthropic") return { status: 500, headers: {}, body: { type: "error", error: { type: "api_error", message: "Internal server error" } } };
      if (provider === "openai") return { status: 500, headers: {}, body: { error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: null } } };
      return { status: 500, headers: {}, body: { error: { code: 500, message: "An internal error has occurred.", status: "INTERNAL" } } };
    default:
      return null;
  }
}

// ---------------------------------------------------------------- replies

type Reply = { text: string } | { tool: { path: string; content: string } };

/** Text, or (for a write scenario whose tool has not run yet in this conversation) the tool call. */
function replyFor(provider: Provider, scenario: Scenario, body: unknown): Reply {
  if (scenario.kind === "text") return { text: scenario.text };
  if (scenario.kind === "write-then-fail") return { tool: { path: scenario.path, content: scenario.content } };
  if (scenario.kind === "steps") {
    const done = toolResults(provider, body);
    return done >= scenario.steps ? { text: scenario.text } : { tool: { path: `${scenario.path}.${done + 1}`, content: `step ${done + 1}\n` } };
  }
  if (scenario.kind !== "write") return { text: "" };
  return toolHasRun(provider, body) ? { text: scenario.text } : { tool: { path: scenario.path, content: scenario.content } };
}

function toolHasRun(provider: Provider, body: unknown): boolean {
  const json = JSON.stringify(body ?? null);
  if (provider === "anthropic") return json.includes('"type":"tool_result"');
  if (provider === "openai") return json.includes('"function_call_output"') || json.includes('"custom_tool_call_output"');
  return json.includes('"functionResponse"');
}

/** How many tool results the conversation holds: the turns a `steps` scenario has had. */
export function toolResults(provider: Provider, body: unknown): number {
  const json = JSON.stringify(body ?? null);
  const count = (needle: string) => json.split(needle).length - 1;
  if (provider === "anthropic") return count('"type":"tool_result"');
  if (provider === "openai") return count('"type":"function_call_output"') + count('"type":"custom_tool_call_output"');
  return count('"functionResponse"');
}

/** The CLI's working folder, as its system prompt states it (for tools that want absolute paths). */
function cwdIn(body: unknown): string | null {
  const json = JSON.stringify(body ?? null);
  const m = /(?:Primary working directory|current working directory|working in the directory|<cwd>|"cwd"):?\s*\\?"?([^\s"\\<]+)/i.exec(json);
  return m?.[1] ?? null;
}

function absolute(path: string, body: unknown): string {
  if (isAbsolute(path)) return path;
  const cwd = cwdIn(body);
  return cwd === null ? path : join(cwd, path);
}

function sse(res: ServerResponse, events: Array<{ event?: string; data: unknown }>): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  for (const e of events) res.write(`${e.event === undefined ? "" : `event: ${e.event}\n`}data: ${JSON.stringify(e.data)}\n\n`);
  res.end();
}

function anthropicReply(req: IncomingMessage, res: ServerResponse, body: unknown, reply: Reply, seq: number): void {
  const request = (body ?? {}) as { model?: string; stream?: boolean };
  const model = request.model ?? ANTHROPIC_MODEL;
  const id = `msg_scripted_${seq}`;
  const usage = USAGE.anthropic;
  const block =
    "text" in reply
      ? { type: "text", text: reply.text }
      : { type: "tool_use", id: `toolu_scripted_${seq}`, name: "Write", input: { file_path: absolute(reply.tool.path, body), content: reply.tool.content } };
  const stopReason = "text" in reply ? "end_turn" : "tool_use";
  if (request.stream !== true) {
    res.writeHead(200, { "content-type": "application/json", "request-id": `req_${seq}` });
    res.end(JSON.stringify({ id, type: "message", role: "assistant", model, content: [block], stop_reason: stopReason, stop_sequence: null, usage }));
    return;
  }
  void req;
  const start = block.type === "text" ? { type: "text", text: "" } : { ...block, input: {} };
  const delta =
    block.type === "text" ? { type: "text_delta", text: (block as { text: string }).text } : { type: "input_json_delta", partial_json: JSON.stringify((block as { input: unknown }).input) };
  sse(res, [
    { event: "message_start", data: { type: "message_start", message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } } },
    { event: "content_block_start", data: { type: "content_block_start", index: 0, content_block: start } },
    { event: "content_block_delta", data: { type: "content_block_delta", index: 0, delta } },
    { event: "content_block_stop", data: { type: "content_block_stop", index: 0 } },
    { event: "message_delta", data: { type: "message_delta", delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } } },
    { event: "message_stop", data: { type: "message_stop" } },
  ]);
}

function openaiReply(res: ServerResponse, body: unknown, reply: Reply, seq: number): void {
  const u = USAGE.openai;
  const response = { id: `resp_scripted_${seq}`, object: "response", created_at: Math.floor(Date.now() / 1000), status: "in_progress", model: OPENAI_MODEL, output: [] as unknown[] };
  const usage = {
    input_tokens: u.input_tokens,
    input_tokens_details: { cached_tokens: u.cached_tokens },
    output_tokens: u.output_tokens,
    output_tokens_details: { reasoning_tokens: u.reasoning_tokens },
    total_tokens: u.input_tokens + u.output_tokens,
  };
  let item: Record<string, unknown>;
  const events: Array<{ event?: string; data: unknown }> = [{ event: "response.created", data: { type: "response.created", response } }];
  if ("text" in reply) {
    item = { type: "message", id: `msg_scripted_${seq}`, role: "assistant", status: "completed", content: [{ type: "output_text", text: reply.text, annotations: [] }] };
    events.push({ event: "response.output_item.added", data: { type: "response.output_item.added", output_index: 0, item: { ...item, status: "in_progress", content: [] } } });
    events.push({ event: "response.output_text.delta", data: { type: "response.output_text.delta", item_id: item.id, output_index: 0, content_index: 0, delta: reply.text } });
  } else {
    item = codexToolCall(body, reply.tool, seq);
    events.push({ event: "response.output_item.added", data: { type: "response.output_item.added", output_index: 0, item: { ...item, status: "in_progress" } } });
  }
  events.push({ event: "response.output_item.done", data: { type: "response.output_item.done", output_index: 0, item } });
  events.push({ event: "response.completed", data: { type: "response.completed", response: { ...response, status: "completed", output: [item], usage } } });
  sse(res, events);
}

/**
 * Codex's file write: apply_patch when the request offers it (codex offers it only for model slugs
 * it knows, e.g. gpt-5.5), else a command through exec_command (offered under every slug).
 */
function codexToolCall(body: unknown, tool: { path: string; content: string }, seq: number): Record<string, unknown> {
  const tools = ((body as { tools?: Array<{ type?: string; name?: string }> } | null)?.tools ?? []).filter((t) => typeof t.name === "string");
  const patch = tools.find((t) => t.name === "apply_patch");
  const call_id = `call_scripted_${seq}`;
  if (patch !== undefined) {
    const input = `*** Begin Patch\n*** Add File: ${tool.path}\n${tool.content.split("\n").map((l) => `+${l}`).join("\n")}\n*** End Patch\n`;
    return patch.type === "custom"
      ? { type: "custom_tool_call", id: `ctc_scripted_${seq}`, call_id, name: "apply_patch", input, status: "completed" }
      : { type: "function_call", id: `fc_scripted_${seq}`, call_id, name: "apply_patch", arguments: JSON.stringify({ input }), status: "completed" };
  }
  const quoted = (text: string): string => `'${text.replace(/'/g, "'\\''")}'`;
  const cmd = `mkdir -p "$(dirname ${quoted(tool.path)})" && printf '%s' ${quoted(tool.content)} > ${quoted(tool.path)}`;
  return { type: "function_call", id: `fc_scripted_${seq}`, call_id, name: "exec_command", arguments: JSON.stringify({ cmd }), status: "completed" };
}

function geminiReply(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
  const u = USAGE.gemini;
  const path = (req.url ?? "").split("?")[0]!;
  const model = /\/models\/([^/:]+):/.exec(path)?.[1] ?? GEMINI_MODEL;
  if (path.endsWith(":countTokens")) {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ totalTokens: u.promptTokenCount }));
    return;
  }
  const part = "text" in reply ? { text: reply.text } : { functionCall: { name: "write_file", args: { file_path: reply.tool.path, content: reply.tool.content } } };
  const chunk = {
    candidates: [{ content: { role: "model", parts: [part] }, finishReason: "STOP", index: 0 }],
    usageMetadata: {
      promptTokenCount: u.promptTokenCount,
      candidatesTokenCount: u.candidatesTokenCount,
      cachedContentTokenCount: u.cachedContentTokenCount,
      thoughtsTokenCount: u.thoughtsTokenCount,
      totalTokenCount: u.promptTokenCount + u.candidatesTokenCount + u.thoughtsTokenCount,
    },
    modelVersion: model,
    responseId: `resp-scripted`,
  };
  if (path.endsWith(":generateContent")) {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(chunk));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.end(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
}

// ---------------------------------------------------------------- no route out

export interface TrapProxy {
  url: string;
  /** Every request that reached the proxy: anything a CLI tried to send anywhere but 127.0.0.1. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * A proxy on 127.0.0.1 that forwards nothing: it records each request (plain HTTP or
 * CONNECT) and refuses it. The tests point HTTP_PROXY, HTTPS_PROXY and ALL_PROXY at it
 * with NO_PROXY=127.0.0.1,localhost, so a CLI that tries to reach any other host (telemetry,
 * update checks, a default API endpoint) fails there and is recorded, and the test
 * asserts the record is empty.
 */
export async function startTrapProxy(): Promise<TrapProxy> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(403).end("roster tests: no traffic leaves 127.0.0.1");
  });
  server.on("clientError", (_error, socket) => socket.destroy());
  server.on("connect", (req, socket) => {
    // A client that gives up mid-refusal resets the socket: that is its business.
    socket.on("error", () => undefined);
    seen.push(`CONNECT ${req.url}`);
    socket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The environment the tests give roster and the CLIs: PATH, the test key, and every proxy variable pointing at the trap. */
export function offlineEnv(trap: TrapProxy, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const proxy = { HTTP_PROXY: trap.url, HTTPS_PROXY: trap.url, ALL_PROXY: trap.url, NO_PROXY: "127.0.0.1,localhost" };
  return {
    PATH: process.env.PATH,
    TZ: process.env.TZ,
    ...proxy,
    ...Object.fromEntries(Object.entries(proxy).map(([k, v]) => [k.toLowerCase(), v])),
    ...extra,
  };
}
