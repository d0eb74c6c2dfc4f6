import { ResourceTemplate, type McpServer, type RegisteredPrompt } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { RosterError, coerceError } from "../../errors.js";
import type { PersonaRecord, Store } from "../../store/index.js";
import type { McpContext } from "../context.js";
import { ok } from "../results.js";
import type { ToolTable } from "../tool.js";
import { HEARTBEAT_DIVISOR } from "../claim-view.js";

export const PERSONA_URI_PREFIX = "roster://personas/";
/** How often open sessions look for personas added, changed or retired (by any process), in ms. */
export const PERSONA_POLL_MS_DEFAULT = 5_000;

/** The facts an agent needs to work as a persona, without its (long) definition. */
export function personaSummary(record: PersonaRecord): Record<string, unknown> {
  const config = record.config as { adapter?: { kind?: unknown }; leaseMs?: unknown; timeoutMs?: unknown; description?: unknown };
  const leaseMs = typeof config.leaseMs === "number" ? config.leaseMs : null;
  return {
    id: record.id,
    name: record.name,
    ...(typeof config.description === "string" ? { description: config.description } : {}),
    adapter: typeof config.adapter?.kind === "string" ? config.adapter.kind : null,
    leaseMs,
    heartbeatEveryMs: leaseMs === null ? null : Math.floor(leaseMs / HEARTBEAT_DIVISOR),
    timeoutMs: typeof config.timeoutMs === "number" ? config.timeoutMs : null,
    prompt: `persona:${record.id}`,
    uri: `${PERSONA_URI_PREFIX}${record.id}`,
  };
}

function definitionText(record: PersonaRecord): string {
  return `# ${record.name} (persona "${record.id}")\n\n${record.definition}\n`;
}

/**
 * Watches the personas table for every session of a process: one read every
 * pollMs while any session listens, and each listener is told the personas in
 * service when they changed (added, renamed, edited, retired).
 */
export class PersonaWatch {
  private readonly listeners = new Set<(personas: PersonaRecord[]) => void>();
  private timer: NodeJS.Timeout | null = null;
  private signature = "";
  private checking = false;

  constructor(
    private readonly store: Store,
    private readonly pollMs: number,
  ) {}

  subscribe(listener: (personas: PersonaRecord[]) => void): () => void {
    this.listeners.add(listener);
    if (this.timer === null) {
      this.timer = setInterval(() => void this.check(), this.pollMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Reads the personas now; listeners hear of a change. Never throws (a closing store only delays the news). */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const personas = await this.store.personas.list();
      const signature = personas.map((p) => `${p.id}@${p.updatedAt}`).join(",");
      if (signature === this.signature) return;
      this.signature = signature;
      for (const listener of [...this.listeners]) listener(personas);
    } catch (error) {
      coerceError(error); // the next round reads again
    } finally {
      this.checking = false;
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * Personas for every profile: list_personas, each definition as the prompt
 * `persona:<id>` and the resource `roster://personas/<id>`, so an agent can adopt
 * one. Prompts follow the database: a persona added, edited or retired while the
 * session is open is added, updated or removed, and the client is sent
 * notifications/prompts/list_changed. Returns a function that stops following.
 */
export async function registerPersonaTools(tools: ToolTable, server: McpServer, ctx: McpContext): Promise<() => void> {
  const { store } = ctx;
  const prompts = new Map<string, RegisteredPrompt>();

  const follow = (personas: PersonaRecord[]): void => {
    const seen = new Set<string>();
    for (const record of personas) {
      seen.add(record.id);
      const existing = prompts.get(record.id);
      if (existing !== undefined) {
        if (existing.title !== record.name) existing.update({ title: record.name, description: `Adopt the ${record.name} persona (its definition as a system prompt).` });
        continue;
      }
      prompts.set(
        record.id,
        server.registerPrompt(`persona:${record.id}`, { title: record.name, description: `Adopt the ${record.name} persona (its definition as a system prompt).` }, async () => {
          const current = (await store.personas.get({ id: record.id })) ?? record;
          return { description: current.name, messages: [{ role: "user", content: { type: "text", text: definitionText(current) } }] };
        }),
      );
    }
    for (const [id, prompt] of prompts) {
      if (seen.has(id)) continue;
      prompt.remove();
      prompts.delete(id);
    }
  };

  tools.define({
    name: "list_personas",
    description: "Personas tasks can be assigned to.",
    input: {},
    output: {},
    annotations: { readOnlyHint: true },
    handler: async () => {
      const personas = await store.personas.list();
      follow(personas);
      return ok({ personas: personas.map(personaSummary) });
    },
  });

  follow(await store.personas.list());
  const stop = ctx.personaWatch.subscribe(follow);

  server.registerResource(
    "persona",
    new ResourceTemplate(`${PERSONA_URI_PREFIX}{id}`, {
      list: async () => ({
        resources: (await store.personas.list()).map((record) => ({
          uri: `${PERSONA_URI_PREFIX}${record.id}`,
          name: `persona:${record.id}`,
          title: record.name,
          mimeType: "text/markdown",
        })),
      }),
    }),
    { description: "A persona's definition (markdown)", mimeType: "text/markdown" },
    async (uri, variables) => {
      const id = String(variables.id);
      const record = await store.personas.get({ id });
      if (record === null) {
        // A protocol error: resources/read has no isError result to carry it.
        throw new RosterError("PERSONA_NOT_FOUND", `uri: unknown persona "${id}"`, { details: { field: "uri" } });
      }
      return { contents: [{ uri: uri.href, mimeType: "text/markdown", text: definitionText(record) }] };
    },
  );
  return stop;
}
