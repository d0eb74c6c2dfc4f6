/**
 * The access checks both of roster's HTTP servers make (MCP over HTTP, src/mcp/http.ts; the
 * dashboard, src/ui/guard.ts): the Host and Origin checks against DNS rebinding and
 * cross-site requests, the bearer token compared in constant time, and the URL a server
 * answers at.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP, type AddressInfo } from "node:net";

const LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]", "::1"];

/** The host name of a Host header or URL authority, lower case, without the port ([v6] kept bracketed); null when empty. */
export function hostnameOf(authority: string): string | null {
  const value = authority.trim().toLowerCase();
  if (value === "") return null;
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    return end === -1 ? null : value.slice(0, end + 1);
  }
  const colon = value.indexOf(":");
  return colon === -1 ? value : value.slice(0, colon);
}

/** Compares two secrets in constant time (through their digests, so lengths leak nothing either). */
export function secretsMatch(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerOf(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1]?.trim();
}

/** The name of the interface a server binds to (an IPv6 address bracketed), and whether it is a loopback name. */
export function bindingOf(host: string): { bindName: string; loopback: boolean } {
  const bindName = hostnameOf(host.includes(":") && !host.startsWith("[") ? `[${host}]` : host) ?? host;
  return { bindName, loopback: LOOPBACK_NAMES.includes(bindName) };
}

export interface HostCheckOptions {
  bindName: string;
  loopback: boolean;
  /** Extra Host header names (without port) to accept. */
  allowedHosts?: string[] | undefined;
  /** Origins accepted as they are (scheme://host:port). */
  allowedOrigins?: string[] | undefined;
}

/** Which Host names and Origins may reach a server: a loopback name, an allowed host, the bound name; off loopback also any IP address. */
export class HostCheck {
  private readonly allowedNames: Set<string>;
  private readonly allowedOrigins: Set<string>;
  private readonly offLoopback: boolean;

  constructor(options: HostCheckOptions) {
    this.allowedNames = new Set<string>([...LOOPBACK_NAMES, ...(options.loopback ? [] : [options.bindName]), ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())]);
    this.allowedOrigins = new Set((options.allowedOrigins ?? []).map((o) => o.toLowerCase()));
    this.offLoopback = !options.loopback;
  }

  /** A loopback name, an allowed host, the bound name; off loopback also any IP address. */
  nameAllowed(name: string | null): boolean {
    return name !== null && (this.allowedNames.has(name) || (this.offLoopback && isIP(name.replace(/^\[(.*)\]$/, "$1")) !== 0));
  }

  /** No Origin (not a browser's cross-site request), an allowed origin, or one whose host passes nameAllowed ("null" or garbage: refused). */
  originAllowed(origin: string | undefined): boolean {
    if (origin === undefined) return true;
    if (this.allowedOrigins.has(origin.toLowerCase())) return true;
    try {
      return this.nameAllowed(hostnameOf(new URL(origin).host));
    } catch {
      return false;
    }
  }
}

/** The http:// URL a listening server answers at (an IPv6 address bracketed), ending in `path`. */
export function listeningUrl(address: AddressInfo, path: string): string {
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${urlHost}:${address.port}${path}`;
}
