/**
 * Who may use the dashboard (the MCP HTTP server's rules): the bind checks, the Host and
 * Origin checks against DNS rebinding and cross-site requests, the bearer token, and the
 * login sessions with their CSRF tokens. src/ui/server.ts applies them in order.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock } from "../clock.js";
import { RosterError } from "../errors.js";
import { HostCheck, bearerOf, bindingOf, secretsMatch, type HostCheckOptions } from "../http-access.js";

export const UI_HOST_DEFAULT = "127.0.0.1";
export const UI_SESSION_COOKIE = "roster_ui";
/** Sessions kept at once; the oldest is dropped past this. */
export const UI_MAX_SESSIONS = 10_000;

export interface Session {
  csrf: string;
  createdAt: number;
}

export function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * What a caller calls each option, for the messages: the flag or variable each value
 * came from (`roster ui --host`, `roster start --ui-host`, ROSTER_UI_TOKEN), and where a
 * missing token can be given. Without them (a program calling startUiServer) the
 * messages name the option's field, ui.host and so on.
 */
export interface UiOptionNames {
  port: string;
  host: string;
  /** The source of the token given: its flag, or the variable when it came from there. */
  token: string;
  /** Where a token can be given, for a host that needs one ("--token or ROSTER_UI_TOKEN"). */
  tokenFrom: string;
}

export const UI_OPTION_FIELDS: UiOptionNames = { port: "ui.port", host: "ui.host", token: "ui.token", tokenFrom: "ui.token" };

/**
 * The bind checks, before anything is opened or written (the commands call it first):
 * a port in range, a token of 8 characters or more, and a token whenever the host is not
 * a loopback address.
 */
export function checkUiOptions(
  options: { host?: string | undefined; port: number; token?: string | undefined },
  names: UiOptionNames = UI_OPTION_FIELDS,
): { host: string; bindName: string; loopback: boolean } {
  const host = options.host ?? UI_HOST_DEFAULT;
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    throw new RosterError("CONFIG_INVALID", `${names.port}: must be an integer from 0 to 65535, got ${String(options.port)}`, { details: { field: "ui.port" } });
  }
  if (options.token !== undefined && options.token.length < 8) {
    throw new RosterError("CONFIG_INVALID", `${names.token}: must be at least 8 characters`, { details: { field: "ui.token" } });
  }
  const { bindName, loopback } = bindingOf(host);
  if (!loopback && options.token === undefined) {
    throw new RosterError("CONFIG_INVALID", `${names.host}: ${host} is not a loopback address; serving the dashboard there needs a token (${names.tokenFrom})`, {
      details: { field: "ui.token" },
    });
  }
  return { host, bindName, loopback };
}

export interface GuardOptions extends HostCheckOptions {
  token?: string | undefined;
  clock: Clock;
}

/** The checks of one server: allowed names and origins (HostCheck), the token, the sessions it issued. */
export class Guard extends HostCheck {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly options: GuardOptions) {
    super(options);
  }

  /** `Authorization: Bearer <token>` with the dashboard's token (never true without one). */
  bearerOk(req: IncomingMessage): boolean {
    if (this.options.token === undefined) return false;
    const given = bearerOf(req);
    return given !== undefined && secretsMatch(given, this.options.token);
  }

  /** True when `token` is the dashboard's token (false when it has none). */
  tokenMatches(token: string): boolean {
    return this.options.token !== undefined && secretsMatch(token, this.options.token);
  }

  sessionOf(req: IncomingMessage): Session | undefined {
    const id = cookieOf(req, UI_SESSION_COOKIE);
    return id === undefined ? undefined : this.sessions.get(id);
  }

  /** A new session, its cookie set on `res` (HttpOnly, SameSite=Strict). */
  newSession(res: ServerResponse): Session {
    const id = randomBytes(32).toString("base64url");
    const session = { csrf: randomBytes(32).toString("base64url"), createdAt: this.options.clock.now() };
    if (this.sessions.size >= UI_MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(id, session);
    res.setHeader("set-cookie", `${UI_SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/`);
    return session;
  }

  /** Forgets the request's session, if any. */
  endSession(req: IncomingMessage): void {
    const id = cookieOf(req, UI_SESSION_COOKIE);
    if (id !== undefined) this.sessions.delete(id);
  }
}
