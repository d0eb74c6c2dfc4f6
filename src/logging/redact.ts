/**
 * Keeping secrets out of logs, in two layers:
 *
 * 1. By key, on the object of each log call and on child-logger bindings: a
 *    field whose name says it holds a secret (token, secret, password,
 *    authorization, cookie, api key, private key …) is replaced by
 *    REDACTED, and every value of an `env` object (a shell or agent adapter's
 *    environment) is replaced too, keeping the variable names.
 * 2. By value, on each finished line: the literal values known to be secret
 *    (every persona adapter's `env` values, the MCP token) are replaced wherever
 *    they appear, including inside messages and error text; so are
 *    `Bearer …` credentials.
 *
 * Layer 1 catches secrets nobody registered; layer 2 catches a registered
 * secret that ended up in a string.
 */
export const REDACTED = "[Redacted]";

/** Values shorter than this are not scrubbed by value: "1" or "on" would erase half of every line. */
export const SECRET_MIN_LENGTH = 6;

const SECRET_WORDS = new Set(["token", "secret", "password", "passwd", "passphrase", "pwd", "authorization", "cookie", "credential", "credentials", "apikey"]);
const SECRET_KEY_SUFFIX = /(?:^|_)(?:api|private|secret|access|signing|client|encryption|session)_?key$/;
const MAX_DEPTH = 8;

/** `accessToken`, `access-token`, `ACCESS_TOKEN` → `access_token`. */
function normalizeKey(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[-.\s]+/g, "_")
    .toLowerCase();
}

/** True when a field of this name holds a secret. */
export function isSecretKey(key: string): boolean {
  const normalized = normalizeKey(key);
  const last = normalized.slice(normalized.lastIndexOf("_") + 1);
  return SECRET_WORDS.has(last) || SECRET_WORDS.has(normalized.replace(/_/g, "")) || SECRET_KEY_SUFFIX.test(normalized);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * A copy of `value` with secret fields and `env` values replaced. Only plain
 * objects and arrays are walked; Errors and other class instances are left for
 * pino's serializers (their text is still scrubbed by value).
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1)) as T;
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue;
    if (isSecretKey(key)) out[key] = REDACTED;
    else if (key === "env" && isPlainObject(item)) out[key] = Object.fromEntries(Object.keys(item).map((name) => [name, REDACTED]));
    else out[key] = redactSecrets(item, depth + 1);
  }
  return out as T;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The literal secret values to scrub from finished log lines. Shared by a
 * logger and its children; values can be added after the logger exists (the
 * personas are loaded after the first log line).
 */
export class SecretValues {
  private readonly values = new Set<string>();
  private pattern: RegExp | null = null;

  constructor(values: Iterable<string> = []) {
    this.add(values);
  }

  add(values: Iterable<string | undefined | null>): void {
    let changed = false;
    for (const value of values) {
      if (typeof value !== "string" || value.length < SECRET_MIN_LENGTH || this.values.has(value)) continue;
      this.values.add(value);
      changed = true;
    }
    if (changed) this.pattern = null;
  }

  get size(): number {
    return this.values.size;
  }

  /** Replaces every known secret (raw, and as it looks inside a JSON string) and `Bearer …` credentials. */
  scrub(line: string): string {
    let out = line.replace(/(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g, `$1 ${REDACTED}`);
    if (this.values.size === 0) return out;
    if (this.pattern === null) {
      const forms = new Set<string>();
      for (const value of this.values) {
        forms.add(value);
        forms.add(JSON.stringify(value).slice(1, -1));
      }
      // Longest first, so a secret that contains another is replaced whole.
      const sorted = [...forms].sort((a, b) => b.length - a.length).map(escapeRegExp);
      this.pattern = new RegExp(sorted.join("|"), "g");
    }
    out = out.replace(this.pattern, REDACTED);
    return out;
  }
}

/** Adapter configs as persona files hold them: `{ adapter: { kind, env?: Record<string, string> } }`. */
interface PersonaLike {
  adapter?: unknown;
  config?: unknown;
}

/** Every value of every persona adapter's `env` (shell and agent adapters), for SecretValues. */
export function personaSecretValues(personas: Iterable<PersonaLike>): string[] {
  const out: string[] = [];
  for (const persona of personas) {
    const adapter = (persona.adapter ?? (isPlainObject(persona.config) ? persona.config.adapter : undefined)) as unknown;
    if (!isPlainObject(adapter)) continue;
    const env = adapter.env;
    if (isPlainObject(env)) for (const value of Object.values(env)) if (typeof value === "string") out.push(value);
  }
  return out;
}
