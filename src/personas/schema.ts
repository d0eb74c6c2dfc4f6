import { z } from "zod";
import { LEASE_MS_DEFAULT, TIMEOUT_MS_DEFAULT, retryPolicyFields } from "../policy/retry.js";
import { agentAdapterFields, checkAgentAdapter } from "../adapters/agent/options.js";
import { approvalSettingsFields } from "../store/approval-gate.js";

/**
 * Persona front matter. Every field is checked here, once; a persona file that
 * fails names the file and the field (see load.ts).
 */
export const PERSONA_ID_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
export const CONCURRENCY_DEFAULT = 4;

const envSchema = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "env names are letters, digits and _"), z.string());

export const adapterSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("echo") }).strict(),
  z.object({ kind: z.literal("sleep"), ms: z.number().int().min(0).optional() }).strict(),
  z.object({ kind: z.literal("fail"), retryable: z.boolean().optional() }).strict(),
  z.object({ kind: z.literal("flaky"), failTimes: z.number().int().min(0).optional() }).strict(),
  z.object({ kind: z.literal("planner") }).strict(),
  z
    .object({
      /** Approval tasks: never claimed; a person approves or rejects them (`roster approve|reject`). */
      kind: z.literal("human"),
      /** deadlineMs and default, checked as a task's payload.approval is. */
      ...approvalSettingsFields,
    })
    .strict(),
  z
    .object({
      kind: z.literal("module"),
      /** Relative to the persona file's folder, or absolute when config allows it. */
      path: z.string().min(1),
    })
    .strict(),
  z
    .object({
      kind: z.literal("shell"),
      command: z.string().min(1),
      args: z.array(z.string()).default([]),
      cwd: z.string().optional(),
      env: envSchema.optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal("agent"),
      command: z.string().min(1).optional(),
      args: z.array(z.string()).optional(),
      cwd: z.string().optional(),
      env: envSchema.optional(),
      model: z.string().optional(),
      // profile (claude | codex | gemini | custom), role, workspace …: src/adapters/agent/options.ts
      ...agentAdapterFields,
    })
    .strict()
    .superRefine(checkAgentAdapter),
]);

export type AdapterConfig = z.infer<typeof adapterSchema>;
export type AdapterKind = AdapterConfig["kind"];

export const personaFrontMatterSchema = z
  .object({
    id: z.string().regex(PERSONA_ID_PATTERN, "must be lowercase letters, digits, _ or -, starting with a letter"),
    name: z.string().min(1),
    adapter: adapterSchema,
    /** Tasks of this persona running at once. */
    concurrency: z.number().int().min(1).max(10_000).default(CONCURRENCY_DEFAULT),
    /** Lease length in ms; renewed every leaseMs / 3. */
    leaseMs: z.number().int().min(100).max(24 * 3_600_000).default(LEASE_MS_DEFAULT),
    /** Per-attempt timeout in ms. */
    timeoutMs: z.number().int().min(1).max(7 * 24 * 3_600_000).default(TIMEOUT_MS_DEFAULT),
    retry: retryPolicyFields
      .partial()
      .refine((p) => p.baseMs === undefined || p.maxMs === undefined || p.maxMs >= p.baseMs, {
        message: "maxMs must be >= baseMs",
        path: ["maxMs"],
      })
      .optional(),
    description: z.string().optional(),
    /**
     * Served only by external agents (MCP workers): no supervisor claims its tasks.
     * Default false. A supervisor picks a change of this flag up while it runs.
     */
    external: z.boolean().default(false),
    /** A human persona's id: this planner's children wait behind one approval of the plan, shown in full. */
    planApproval: z.string().regex(PERSONA_ID_PATTERN, "must be a persona id").optional(),
    // Economics (docs/economics.md): the provider account a rate or usage limit pauses, the circuit breaker, the start rate.
    provider: z.string().min(1).max(100).optional(),
    providerAutoResume: z.boolean().optional(),
    breaker: z
      .object({
        failures: z.number().int().min(1).optional(),
        // The failure-rate variant: failures / attempts in a fixed window of windowMs, once it holds minAttempts.
        failureRate: z.number().gt(0).max(1).optional(),
        windowMs: z.number().int().min(1).optional(),
        minAttempts: z.number().int().min(1).optional(),
        cooldownMs: z.number().int().min(1).optional(),
        maxCooldownMs: z.number().int().min(1).optional(),
      })
      .strict()
      .refine((b) => b.failures !== undefined || b.failureRate !== undefined, { message: "needs failures (consecutive) or failureRate (over windowMs)" })
      .optional(),
    rateLimit: z.object({ starts: z.number().int().min(1), perMs: z.number().int().min(1), key: z.string().min(1).max(100).optional() }).strict().optional(),
  })
  .strict();

export type PersonaConfig = z.infer<typeof personaFrontMatterSchema>;

export interface Persona extends PersonaConfig {
  /** The markdown body: the persona's definition / system prompt. */
  definition: string;
  /** The file it came from, or null when only the database has it. */
  sourcePath: string | null;
}
