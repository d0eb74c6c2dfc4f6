import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { RosterError, coerceError } from "../errors.js";
import type { LeaseLoss } from "../store/index.js";

/**
 * How every roster tool answers.
 *
 * A success is its object as `structuredContent`, once. The text block beside it
 * (the spec asks for one, for clients that read only text) is the same JSON when
 * that is at most TEXT_INLINE_MAX_CHARS, and otherwise a one-line summary that
 * says the object is in structuredContent: clients that read structuredContent
 * (Claude Code, VS Code) give the model that, and those that read both do not pay
 * for a big answer twice.
 *
 * A failure the agent should act on is a result with `isError: true` and
 * `{ error: { code, message, field?, details? } }`, in full in the text as well
 * (some clients drop structuredContent on errors). Schema failures take the same
 * shape (code VALIDATION, see tool.ts), so an agent handles one kind of error.
 */
export type ToolData = Record<string, unknown>;

/** A success's JSON longer than this is summarised in the text block, in characters. */
export const TEXT_INLINE_MAX_CHARS = 2_048;

export function ok(data: ToolData, summary?: () => string): CallToolResult {
  const json = JSON.stringify(data);
  const text = json.length <= TEXT_INLINE_MAX_CHARS || summary === undefined ? json : `${summary()} (${json.length} chars of JSON in structuredContent)`;
  return { content: [{ type: "text", text }], structuredContent: data };
}

/** Codes MCP tools answer besides the store's (docs/mcp.md lists them all). */
export type McpOnlyCode = "UNKNOWN_TOOL" | "AGENT_IN_USE" | "AGENT_MISMATCH";

/** A refusal raised by the MCP layer itself, with a code the store does not have. */
export class McpToolError extends Error {
  constructor(
    readonly code: McpOnlyCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "McpToolError";
  }
}

export interface ToolErrorBody {
  code: string;
  message: string;
  field?: string;
  details?: Record<string, unknown>;
}

export function toolError(body: ToolErrorBody): CallToolResult {
  const data = { error: body };
  return { content: [{ type: "text", text: JSON.stringify(data) }], structuredContent: data, isError: true };
}

/** A RosterError or McpToolError becomes an isError result with its code; anything else is INTERNAL. */
export function errorResult(value: unknown): CallToolResult {
  if (value instanceof McpToolError) {
    return toolError({ code: value.code, message: value.message, ...(value.field !== undefined ? { field: value.field } : {}) });
  }
  const error = coerceError(value);
  if (error instanceof RosterError) {
    const field = typeof error.details?.field === "string" && error.details.field !== "" ? error.details.field : undefined;
    const details = error.details === undefined ? undefined : pickDetails(error.details);
    return toolError({ code: error.code, message: error.message, ...(field !== undefined ? { field } : {}), ...(details ? { details } : {}) });
  }
  return toolError({ code: "INTERNAL", message: error.message });
}

/** Only small, useful details travel back to the agent (cycle path, task ref, index). */
function pickDetails(details: Record<string, unknown>): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const key of ["index", "ref", "cycle", "taskId", "status"]) {
    if (details[key] !== undefined) out[key] = details[key];
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Runs a tool body; thrown errors come back as isError results. */
export async function guard(body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await body();
  } catch (error) {
    return errorResult(error);
  }
}

const LOSS_TEXT: Record<LeaseLoss["reason"], string> = {
  expired: "your lease expired (no heartbeat for a whole lease) and the reaper took the task back",
  cancelled: "the task was cancelled",
  completed: "the task was completed by another lease",
  released: "the task was released",
  failed: "the task's attempt was failed",
  taken: "another agent claimed the task",
  unknown: "this lease token is not the task's current one",
};

/** LEASE_LOST with why: details.reason is expired, cancelled, completed, released, failed, taken or unknown. */
export function leaseLost(taskId: number, loss: LeaseLoss): CallToolResult {
  return toolError({
    code: "LEASE_LOST",
    message: `lease lost on task ${taskId}: ${LOSS_TEXT[loss.reason]}; stop working on it and drop your result`,
    field: "leaseToken",
    details: { taskId, reason: loss.reason, status: loss.status, ...(loss.by !== null ? { by: loss.by } : {}) },
  });
}
