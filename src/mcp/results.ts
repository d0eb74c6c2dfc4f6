import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { RosterError, coerceError } from "../errors.js";

/**
 * How every roster tool answers. A success is compact JSON text plus the same
 * object as `structuredContent`. A failure the agent should act on (lease lost,
 * unknown task, cycle, bad input the store caught) is a result with `isError: true`
 * and `{ error: { code, message, field? } }`, so the model sees it and can correct
 * itself; the SDK turns schema (zod) failures into isError results the same way.
 * Protocol errors (unknown tool, malformed JSON-RPC) are thrown by the SDK.
 */
export type ToolData = Record<string, unknown>;

export function ok(data: ToolData): CallToolResult {
  return { content: [{ type: "text", text: JSON.stringify(data) }], structuredContent: data };
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

/** A RosterError becomes an isError result with its code; anything else is INTERNAL. */
export function errorResult(value: unknown): CallToolResult {
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

/** Runs a tool body; thrown RosterErrors come back as isError results. */
export async function guard(body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await body();
  } catch (error) {
    return errorResult(error);
  }
}

export function leaseLost(taskId: number): CallToolResult {
  return toolError({
    code: "LEASE_LOST",
    message: `lease lost on task ${taskId}: it was reaped, cancelled or claimed by another agent; stop working on it and drop your result`,
    field: "leaseToken",
    details: { taskId },
  });
}
