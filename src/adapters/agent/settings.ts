import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RosterError } from "../../errors.js";
import type { AgentAdapterConfig } from "./launch.js";
import type { AgentProfile } from "./profiles.js";

/**
 * The per-attempt settings that point a CLI at its model API and keep it from
 * retrying or talking to anything else on its own: environment variables, codex's
 * `-c` config overrides, and (with `home: fresh`) a new HOME holding the settings
 * files roster writes, removed after the attempt.
 *
 * - claude: ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY; retries and outside traffic
 *   are environment variables already in its profile.
 * - codex: a provider `roster` (`base_url`, `env_key`, `wire_api = "responses"`,
 *   `request_max_retries = 0`, `stream_max_retries = 0`) when `baseUrl` or
 *   `apiKeyEnv` is set (codex ignores OPENAI_BASE_URL); plugins, apps and
 *   analytics off always. It reads the key by `apiKeyEnv`'s own name.
 * - gemini: GOOGLE_GEMINI_BASE_URL, GEMINI_API_KEY; its retry bound
 *   (`general.maxAttempts = 1`, `general.retryFetchErrors = false`), statistics and
 *   telemetry off, and `security.auth.selectedType = "gemini-api-key"` can only be
 *   set in a settings file: written under a fresh home (GEMINI_CLI_HOME). Gemini
 *   refuses a system settings file under a world-writable folder such as /tmp.
 */
export interface AttemptSettings {
  env: Record<string, string>;
  args: string[];
  /** The fresh home, when there is one. */
  home: string | null;
  /** Removes what was made for the attempt. */
  cleanup(): Promise<void>;
}

/** Codex's provider id for the persona's base URL / key. */
export const CODEX_PROVIDER_ID = "roster";
const OPENAI_BASE_URL_DEFAULT = "https://api.openai.com/v1";

export async function prepareSettings(input: {
  profile: AgentProfile;
  config: AgentAdapterConfig;
  baseEnv: NodeJS.ProcessEnv;
  personaId: string;
  /** With `home: fresh`: the home an earlier attempt of the task kept for this one (its sessions), used instead of a new one. */
  reuseHome?: string | null;
}): Promise<AttemptSettings> {
  const { profile, config, baseEnv } = input;
  const env: Record<string, string> = { ...profile.env };
  const args: string[] = [];
  if (config.baseUrl !== undefined && profile.baseUrlEnv !== null) env[profile.baseUrlEnv] = config.baseUrl;
  if (config.apiKeyEnv !== undefined) {
    const key = baseEnv[config.apiKeyEnv];
    if (key === undefined || key === "") {
      throw new RosterError("ADAPTER_FAILED", `persona "${input.personaId}": apiKeyEnv names ${config.apiKeyEnv}, which is not set in roster's environment (authentication failed before starting ${profile.command})`, {
        retryable: false,
        details: { failure: "auth", variable: config.apiKeyEnv },
      });
    }
    // Codex reads the key by the provider's env_key, which is this very name.
    if (profile.keyEnv !== null && profile.dialect !== "codex") env[profile.keyEnv] = key;
  }
  if (profile.dialect === "codex") args.push(...codexArgs(config));
  if (config.baseUrl !== undefined) await checkBaseUrl(config.baseUrl, profile.command);

  if (config.home !== "fresh") return { env, args, home: null, cleanup: async () => undefined };
  const home = input.reuseHome ?? (await mkdtemp(join(tmpdir(), "roster-home-")));
  try {
    env.HOME = home;
    if (process.platform === "win32") env.USERPROFILE = home;
    if (profile.dialect === "codex") {
      env.CODEX_HOME = join(home, ".codex");
      await mkdir(env.CODEX_HOME, { recursive: true });
    }
    if (profile.dialect === "gemini") {
      env.GEMINI_CLI_HOME = home;
      await mkdir(join(home, ".gemini"), { recursive: true });
      await writeFile(join(home, ".gemini", "settings.json"), `${JSON.stringify(geminiSettings(), null, 2)}\n`);
    }
  } catch (error) {
    await rm(home, { recursive: true, force: true });
    throw error;
  }
  return { env, args, home, cleanup: () => rm(home, { recursive: true, force: true }) };
}

/** How long the check that a persona's baseUrl accepts connections waits, in ms. */
export const BASE_URL_CHECK_MS = 3_000;

/**
 * Fails the attempt at once, retryable, when the persona's baseUrl refuses connections
 * or its name does not resolve: Codex 0.171 reconnects to an unreachable server forever
 * whatever its retry settings, so without this only the attempt's timeout would end it.
 * A server that does not answer within BASE_URL_CHECK_MS is left to the CLI.
 */
export function checkBaseUrl(baseUrl: string, command: string): Promise<void> {
  const url = new URL(baseUrl);
  const port = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, BASE_URL_CHECK_MS);
    timer.unref();
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new RosterError("ADAPTER_FAILED", `${command} was not started (model API unreachable; will retry): ${baseUrl}: ${error.code ?? ""} ${error.message}`.replace(/\s+/g, " "), {
          cause: error,
          retryable: true,
          details: { failure: "unreachable", baseUrl, errno: error.code ?? null },
        }),
      );
    });
  });
}

/** `-c key=value` overrides (values are TOML; a JSON string is a valid TOML basic string). */
export function codexArgs(config: AgentAdapterConfig): string[] {
  const set = (key: string, value: string): string[] => ["-c", `${key}=${value}`];
  const args = [...set("features.plugins", "false"), ...set("features.apps", "false"), ...set("features.remote_plugin", "false"), ...set("analytics.enabled", "false")];
  if (config.baseUrl === undefined && config.apiKeyEnv === undefined) return args;
  const provider = [
    `name = ${JSON.stringify(CODEX_PROVIDER_ID)}`,
    `base_url = ${JSON.stringify(config.baseUrl ?? OPENAI_BASE_URL_DEFAULT)}`,
    `env_key = ${JSON.stringify(config.apiKeyEnv ?? "OPENAI_API_KEY")}`,
    `wire_api = "responses"`,
    // Its own retries off (5 of each by default): roster's retry policy decides.
    "request_max_retries = 0",
    "stream_max_retries = 0",
  ];
  return [...args, ...set("model_provider", JSON.stringify(CODEX_PROVIDER_ID)), ...set(`model_providers.${CODEX_PROVIDER_ID}`, `{ ${provider.join(", ")} }`)];
}

/** Gemini CLI's settings.json for a fresh home. */
export function geminiSettings(): Record<string, unknown> {
  return {
    // One attempt per request (default: retries for about 5 minutes), no retries of failed connections.
    general: { maxAttempts: 1, retryFetchErrors: false },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
    // A fresh home holds no Google login: the key (GEMINI_API_KEY) is the way in.
    security: { auth: { selectedType: "gemini-api-key" } },
  };
}
