// The dashboard's API client: one fetch wrapper that sends the session's CSRF token with
// every action and turns an error answer ({ error: { code, message, field } }) into an
// ApiError. The server side is src/ui/server.ts and src/ui/api.ts.

// Answers are JSON shaped per page (src/ui/api.ts); the views read them as plain records.
export type Dict = Record<string, any>;

let csrf = "";
let user = "";

/** Keeps what GET /api/session or POST /api/login said: the CSRF token actions carry, and who acts. */
export function setSession(s: { csrf: string; user: string }): void {
  csrf = s.csrf;
  user = s.user;
}

/** Who the dashboard acts as ("ui:<user>"), once the session is known. */
export function sessionUser(): string {
  return user;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

export async function api<T = Dict>(path: string, init?: { method?: string; body?: unknown }): Promise<T> {
  const res = await fetch(`api/${path}`, {
    method: init?.method ?? "GET",
    credentials: "same-origin",
    headers: init?.body !== undefined ? { "content-type": "application/json", "x-roster-csrf": csrf } : {},
    ...(init?.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const data = (await res.json().catch(() => ({}))) as Dict;
  if (!res.ok) throw new ApiError(res.status, data.error?.code ?? String(res.status), data.error?.message ?? res.statusText, data.error?.field);
  return data as T;
}
