import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ListToolsRequestSchema, type CallToolResult, type ServerNotification, type ServerRequest, type Tool, type ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { Protocol, type RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import { z } from "zod";
import { guard, toolError } from "./results.js";

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface ToolSpec<Shape extends z.ZodRawShape> {
  name: string;
  description: string;
  input: Shape;
  /** The shape of structuredContent on success; clients check it (keep it small: it is sent on every tools/list). `{}` lists none. */
  output: z.ZodRawShape;
  annotations: ToolAnnotations;
  /**
   * Accepted but not listed: an argument kept so older callers are not refused
   * (agentId on worker tools, now that the session has its agent).
   */
  legacy?: z.ZodRawShape;
  handler: (args: z.output<z.ZodObject<Shape>>, extra: ToolExtra) => Promise<CallToolResult>;
}

interface Entry {
  schema: z.ZodType;
  handler: (args: never, extra: ToolExtra) => Promise<CallToolResult>;
}

/** `tasks[0].title` from a zod issue path. */
export function fieldOf(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  return out;
}

const LENGTH_KEYS = new Set(["minLength", "maxLength", "maxItems", "pattern", "exclusiveMinimum"]);

/**
 * JSON Schema for tools/list without what costs bytes and tells the model little:
 * `$schema`, numeric bounds (zod adds the safe-integer ones to every integer),
 * string lengths and patterns (all enforced on every call all the same, and a
 * refusal names the limit), and in output schemas what only constrains
 * (additionalProperties, required).
 */
export function listedSchema(schema: z.ZodType, io: "input" | "output"): Tool["inputSchema"] {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (node === null || typeof node !== "object") return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === "$schema") continue;
      // Numeric bounds too: enforced on every call, a refusal names the bound, and the descriptions give those a model needs (waitMs, fraction).
      if (key === "maximum" || key === "minimum") continue;
      // Lengths and patterns are checked on every call, and a refusal names the limit.
      if (LENGTH_KEYS.has(key)) continue;
      // Unknown keys are refused on every call (strict objects), naming the key: no need to list that.
      if (key === "additionalProperties" && value === false) continue;
      // `{}` (anything goes) says nothing a model can use.
      if (key === "additionalProperties" && value !== null && typeof value === "object" && Object.keys(value).length === 0) continue;
      if (io === "output" && (key === "additionalProperties" || key === "required")) continue;
      if (key === "properties" && value !== null && typeof value === "object" && Object.keys(value).length === 0) continue;
      out[key] = strip(value);
    }
    return out;
  };
  return strip(z.toJSONSchema(schema, { target: "draft-7", io, unrepresentable: "any" })) as Tool["inputSchema"];
}

/**
 * Zod issues as one roster error: the first issue's field, every issue in the
 * message as `field: problem` (an unknown key is named as the field itself).
 */
export function validationError(issues: ReadonlyArray<z.core.$ZodIssue>): CallToolResult {
  const parts = issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const keys = issue.keys.map((key) => fieldOf([...issue.path, key]));
      return { field: keys[0] ?? fieldOf(issue.path), text: `${keys.join(", ")}: unknown field${keys.length > 1 ? "s" : ""}` };
    }
    const field = fieldOf(issue.path);
    return { field, text: `${field === "" ? "arguments" : field}: ${issue.message}` };
  });
  const field = parts[0]?.field ?? "";
  return toolError({ code: "VALIDATION", message: parts.map((p) => p.text).join("; "), ...(field !== "" ? { field } : {}) });
}

/**
 * roster's tools on one McpServer. The SDK lists them (tools/list, with input and
 * output schemas and annotations); calls are dispatched here instead, so that a
 * schema failure answers in the same `{ error: { code, message, field } }` shape as
 * every other failure (the SDK's own answer is plain text), and unknown top-level
 * keys are refused (strict objects) rather than dropped.
 */
export class ToolTable {
  private readonly entries = new Map<string, Entry>();
  private readonly listed: Tool[] = [];

  /** `around` runs each tool call (the session counts its calls in progress: McpSession.call). */
  constructor(
    private readonly server: McpServer,
    private readonly around: <T>(run: () => Promise<T>) => Promise<T> = (run) => run(),
  ) {}

  define<Shape extends z.ZodRawShape>(spec: ToolSpec<Shape>): void {
    const schema = z.strictObject(spec.input);
    this.listed.push({
      name: spec.name,
      description: spec.description,
      inputSchema: listedSchema(schema, "input"),
      // An output with no named fields lists no schema: `{"type":"object"}` is what every structuredContent is anyway.
      ...(Object.keys(spec.output).length > 0 ? { outputSchema: listedSchema(z.object(spec.output), "output") } : {}),
      annotations: spec.annotations,
    });
    const accepted = spec.legacy === undefined ? schema : z.strictObject({ ...spec.input, ...spec.legacy });
    this.entries.set(spec.name, { schema: accepted, handler: spec.handler as Entry["handler"] });
  }

  /** Answers tools/list and tools/call from this table. Call once, after every define() and before connect(). */
  install(): void {
    this.server.server.registerCapabilities({ tools: { listChanged: false } });
    this.server.server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: this.listed }));
    // Only the method is checked by the schema: a request without a tool name, or with
    // arguments that are not an object, is answered below in the one error shape. The
    // handler is installed with Protocol's own setRequestHandler because the SDK's Server
    // overrides it for tools/call to check the request first, and answers a malformed one
    // with a JSON-RPC error carrying zod's dump; every other check it adds (the result's
    // shape) holds for what roster answers.
    const request = z.object({ method: z.literal("tools/call"), params: z.looseObject({ name: z.unknown().optional(), arguments: z.unknown().optional() }).optional() });
    Protocol.prototype.setRequestHandler.call(this.server.server, request, async (req: z.output<typeof request>, extra: ToolExtra) => {
      const name = req.params?.name;
      if (typeof name !== "string" || name === "") {
        const known = [...this.entries.keys()].join(", ");
        return toolError({ code: "VALIDATION", message: `name: ${name === undefined ? "required" : "must be a non-empty string"}: the tool to call (tools: ${known})`, field: "name" });
      }
      const entry = this.entries.get(name);
      if (entry === undefined) {
        const known = [...this.entries.keys()].join(", ");
        return toolError({ code: "UNKNOWN_TOOL", message: `name: no tool "${name}" in this session (tools: ${known})`, field: "name" });
      }
      const parsed = entry.schema.safeParse(req.params?.arguments ?? {});
      if (!parsed.success) return validationError(parsed.error.issues);
      return this.around(() => guard(() => entry.handler(parsed.data as never, extra)));
    });
  }
}
