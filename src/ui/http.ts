/**
 * The dashboard server's HTTP plumbing (src/ui/server.ts uses it): the headers every
 * answer carries, JSON answers and errors, and a request's JSON body read with a size cap.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { coerceError } from "../errors.js";
import { UiError } from "./api.js";

export const UI_MAX_BODY_BYTES = 2 * 1024 * 1024;

export const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, error: UiError, headers: Record<string, string> = {}): void {
  sendJson(res, error.status, { error: { code: error.code, message: error.message, ...(error.field !== undefined ? { field: error.field } : {}) } }, headers);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > UI_MAX_BODY_BYTES) {
        reject(new UiError(413, "PAYLOAD_TOO_LARGE", `body: over ${UI_MAX_BODY_BYTES} bytes`, "body"));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** The body of an action: application/json only (415 otherwise), {} when empty, 400 naming "body" when not JSON. */
export async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") throw new UiError(415, "UNSUPPORTED_MEDIA_TYPE", `content-type: must be application/json, got "${type}"`, "content-type");
  const raw = (await readBody(req)).toString("utf8");
  if (raw.trim() === "") return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch (error) {
    throw new UiError(400, "VALIDATION", `body: not valid JSON (${coerceError(error).message})`, "body");
  }
}
