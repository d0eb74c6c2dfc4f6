/**
 * The built front end, served from one folder (vite writes it: src/ui/web/vite.config.mjs).
 * Paths without an extension are client-side routes and get index.html; nothing outside
 * the folder is ever read.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { UiError } from "./api.js";
import { SECURITY_HEADERS, sendError } from "./http.js";

/** The built front end (vite writes it here; see src/ui/web/vite.config.mjs). */
export const UI_PUBLIC_DIR = fileURLToPath(new URL("./public/", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
};

const CONTENT_SECURITY_POLICY =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Answers a GET (or HEAD) for `path` from `publicDir`: 503 when the front end is not built, 404 for a missing asset. */
export function serveStatic(publicDir: string, res: ServerResponse, path: string, head: boolean): void {
  let rel = normalize(decodeURIComponent(path)).replace(/^([/\\])+/, "");
  if (rel === "" || !extname(rel)) rel = "index.html"; // client-side routes
  const file = join(publicDir, rel);
  if (!file.startsWith(publicDir.endsWith(sep) ? publicDir : publicDir + sep) || !existsSync(file) || !statSync(file).isFile()) {
    if (rel === "index.html") {
      res.writeHead(503, { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" });
      res.end(`the dashboard's front end is not built (${publicDir} is missing): run npm run build\n`);
      return;
    }
    return sendError(res, new UiError(404, "NOT_FOUND", `no such file: /${rel}`));
  }
  const body = readFileSync(file);
  const immutable = rel.startsWith("assets/");
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
    "content-length": String(body.length),
    "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-store",
    "content-security-policy": CONTENT_SECURITY_POLICY,
  });
  res.end(head ? undefined : body);
}
