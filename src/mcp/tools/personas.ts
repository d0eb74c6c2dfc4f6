import { ResourceTemplate, type McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { RosterError } from "../../errors.js";
import type { PersonaRecord } from "../../store/index.js";
import type { McpContext } from "../context.js";
import { guard, ok } from "../results.js";
import { HEARTBEAT_DIVISOR } from "./worker.js";

export const PERSONA_URI_PREFIX = "roster://personas/";

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
 * Personas for both profiles: list_personas, each definition as the prompt
 * `persona:<id>` and the resource `roster://personas/<id>`, so an agent can adopt
 * one. Prompts are registered from the personas the database holds when the
 * session starts; the resource template reads the database on every request.
 */
export async function registerPersonaTools(server: McpServer, ctx: McpContext): Promise<void> {
  const { store } = ctx;

  server.registerTool(
    "list_personas",
    { description: "Personas tasks can be assigned to, with lease length and heartbeat interval." },
    async () => guard(async () => ok({ personas: (await store.personas.list()).map(personaSummary) })),
  );

  for (const record of await store.personas.list()) {
    server.registerPrompt(
      `persona:${record.id}`,
      { title: record.name, description: `Adopt the ${record.name} persona (its definition as a system prompt).` },
      async () => {
        const current = (await store.personas.get({ id: record.id })) ?? record;
        return {
          description: current.name,
          messages: [{ role: "user", content: { type: "text", text: definitionText(current) } }],
        };
      },
    );
  }

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
}
