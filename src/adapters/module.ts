import { existsSync, realpathSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { RosterError } from "../errors.js";
import type { AdapterEnvironment } from "./registry.js";
import type { Adapter, AdapterPersona, AdapterRun } from "./types.js";

/**
 * `module`: a user module exporting `run(task, ctx)` (or a default export that is
 * `run` or has it). `adapter.path` is relative to the persona file's folder and
 * may not lead out of the personas folder (symlinks followed); an absolute path
 * outside it needs config.allowAbsoluteModules.
 */
function within(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

export function resolveModulePath(persona: AdapterPersona, env: AdapterEnvironment): string {
  if (persona.adapter.kind !== "module") {
    throw new RosterError("ADAPTER_NOT_FOUND", `persona "${persona.id}" does not use a module adapter`, { retryable: false });
  }
  const raw = persona.adapter.path;
  const where = `persona "${persona.id}" adapter.path "${raw}"`;
  const absolute = isAbsolute(raw);
  const path = absolute ? resolve(raw) : resolve(persona.dir ?? env.personasDir, raw);
  // Where it leads is checked before whether it exists: a path out of the folder is refused as such.
  const inside = within(real(env.personasDir), real(path));
  if (!inside && !(absolute && env.allowAbsoluteModules)) {
    const why = absolute
      ? "is outside the personas folder; set allowAbsoluteModules to allow absolute module paths"
      : "leads out of the personas folder";
    throw new RosterError("ADAPTER_NOT_FOUND", `${where}: ${why} (${env.personasDir})`, { retryable: false, details: { field: "adapter.path", path } });
  }
  if (!existsSync(path)) {
    throw new RosterError("ADAPTER_NOT_FOUND", `${where}: no file at ${path}`, { retryable: false, details: { field: "adapter.path", path } });
  }
  return path;
}

export async function createAdapter(persona: AdapterPersona, env: AdapterEnvironment): Promise<Adapter> {
  const path = resolveModulePath(persona, env);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new RosterError("ADAPTER_NOT_FOUND", `persona "${persona.id}": cannot load module ${path}: ${(error as Error).message}`, {
      retryable: false,
      cause: error,
    });
  }
  const fallback = module.default as { run?: unknown } | ((...args: unknown[]) => unknown) | undefined;
  const run =
    typeof module.run === "function"
      ? module.run
      : typeof fallback === "function"
        ? fallback
        : typeof fallback === "object" && fallback !== null && typeof fallback.run === "function"
          ? fallback.run.bind(fallback)
          : undefined;
  if (run === undefined) {
    throw new RosterError("ADAPTER_NOT_FOUND", `persona "${persona.id}": module ${path} exports no run function`, { retryable: false });
  }
  return { run: run as AdapterRun };
}
