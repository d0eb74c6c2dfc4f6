import { expect } from "vitest";

/** A client that keeps the session cookie and CSRF token, as the page does. */
export class Client {
  cookie = "";
  csrf = "";
  constructor(
    readonly base: string,
    readonly headers: Record<string, string> = {},
  ) {}
  async req(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
    const res = await fetch(new URL(path, this.base), {
      method,
      headers: {
        ...this.headers,
        ...(this.cookie !== "" ? { cookie: this.cookie } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(this.csrf !== "" && method === "POST" ? { "x-roster-csrf": this.csrf } : {}),
        ...extra,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    const setCookie = res.headers.get("set-cookie");
    if (setCookie !== null) this.cookie = setCookie.split(";")[0]!;
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (the page)
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }
  async login(): Promise<void> {
    const s = await this.req("GET", "/api/session");
    expect(s.status).toBe(200);
    this.csrf = s.body.csrf;
  }
}
