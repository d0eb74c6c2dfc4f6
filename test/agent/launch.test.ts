import { describe, expect, it } from "vitest";
import { buildLaunch, resolveProfile, type AgentAdapterConfig } from "../../src/adapters/agent/launch.js";
import { adapterSchema } from "../../src/personas/schema.js";

const config = (input: Record<string, unknown>): AgentAdapterConfig => adapterSchema.parse({ kind: "agent", ...input }) as AgentAdapterConfig;

describe("agent launch (profile → argv)", () => {
  it("launches claude in print mode with JSON output, edits accepted, and the prompt on stdin", () => {
    const c = config({ profile: "claude" });
    expect(buildLaunch(resolveProfile(c), c, "do it")).toEqual({ command: "claude", args: ["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits"], stdin: "do it" });
  });

  it("launches codex as exec --json in a workspace-write sandbox with the model, the settings and the persona's args, prompt on stdin", () => {
    const c = config({ profile: "codex", model: "gpt-5.5", args: ["--skip-git-repo-check"] });
    expect(buildLaunch(resolveProfile(c), c, "p", ["-c", "analytics.enabled=false"])).toEqual({
      command: "codex",
      args: ["exec", "--json", "--sandbox", "workspace-write", "--model", "gpt-5.5", "-c", "analytics.enabled=false", "--skip-git-repo-check"],
      stdin: "p",
    });
  });

  it("passes gemini's prompt as the value of --prompt, as one argument, with edits approved", () => {
    const c = config({ profile: "gemini" });
    const prompt = 'two words "quoted" $(rm -rf /) `x` ; | &';
    expect(buildLaunch(resolveProfile(c), c, prompt)).toEqual({ command: "gemini", args: ["--output-format", "json", "--approval-mode", "auto_edit", "--prompt", prompt], stdin: null });
  });

  it("leaves out the profile's permission flag when the persona's args set it (a planner in plan mode)", () => {
    const claude = config({ profile: "claude", args: ["--permission-mode", "plan"] });
    expect(buildLaunch(resolveProfile(claude), claude, "p").args).toEqual(["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "plan"]);
    const gemini = config({ profile: "gemini", args: ["--approval-mode=plan"] });
    expect(buildLaunch(resolveProfile(gemini), gemini, "p").args).toEqual(["--output-format", "json", "--approval-mode=plan", "--prompt", "p"]);
  });

  it("puts the prompt where a {prompt} element stands, whole", () => {
    const c = config({ profile: "custom", command: "my-agent", args: ["run", "--task", "{prompt}", "--model", "{model}"], model: "m1" });
    expect(buildLaunch(resolveProfile(c), c, "a b c")).toEqual({ command: "my-agent", args: ["run", "--task", "a b c", "--model", "m1"], stdin: null });
  });

  it("lets a persona override the command, prompt mode and output of a profile", () => {
    const c = config({ profile: "claude", command: "/opt/claude", promptVia: "argument", output: "text" });
    const profile = resolveProfile(c);
    expect(profile.output).toEqual({ format: "text" });
    expect(buildLaunch(profile, c, "hi")).toEqual({ command: "/opt/claude", args: ["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits", "hi"], stdin: null });
  });

  it("adds a persona's failure patterns and exit codes to the profile's", () => {
    const profile = resolveProfile(config({ profile: "gemini", rateLimitPatterns: ["slow down"], nonRetryableExitCodes: [7] }));
    expect(profile.rateLimitPatterns).toContain("slow down");
    expect(profile.rateLimitPatterns).toContain("\\b429\\b");
    expect(profile.nonRetryableExitCodes).toEqual([42, 53, 7]);
  });

  it("rejects a custom profile without a command, and an unknown profile, naming the field", () => {
    const custom = adapterSchema.safeParse({ kind: "agent", profile: "custom" });
    expect(custom.success).toBe(false);
    expect(custom.error?.issues.map((i) => i.path.join("."))).toEqual(["command"]);
    const unknown = adapterSchema.safeParse({ kind: "agent", profile: "copilot" });
    expect(unknown.error?.issues[0]?.message).toMatch(/claude, codex, gemini, custom/);
  });
});
