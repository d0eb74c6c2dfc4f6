import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { RosterError } from "../../errors.js";
import { localTime, table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, withStore, type DbOptions, type JsonOptions } from "../options.js";

/** Who the audit events name for changes made from the command line. */
const BY = "cli";

/**
 * The gates besides budgets (docs/economics.md), by hand:
 * `roster provider ls|resume PROVIDER` — provider accounts paused after a rate or
 * usage limit; resume ends a pause now (the only way out when the persona sets
 * providerAutoResume: false). `roster breaker ls|reset PERSONA` — circuit
 * breakers; reset closes one now. Each change writes an audit event
 * (provider:resumed, breaker:reset) and wakes the supervisors.
 */
export function register(program: Command): void {
  registerProvider(program);
  registerBreaker(program);
}

function registerProvider(program: Command): void {
  const provider = program.command("provider").description("list paused provider accounts, or resume one now");

  const ls = provider.command("ls").description("list provider accounts paused after a rate or usage limit");
  addDbOption(ls);
  addJsonOption(ls);
  ls.action(async (options: DbOptions & JsonOptions) => {
    const pauses = await withStore(configFrom(options), "existing", (store) => store.economics.pauses({ now: systemClock.now() }));
    if (options.json) {
      printJson(pauses);
      return;
    }
    if (pauses.length === 0) {
      write("no provider is paused");
      return;
    }
    write(
      table(
        ["PROVIDER", "REASON", "SINCE", "UNTIL", "TASK"],
        pauses.map((p) => [p.provider, p.reason, localTime(p.since), p.until === null ? "resumed by hand" : localTime(p.until), p.taskId]),
      ).trimEnd(),
    );
  });

  const resume = provider.command("resume").description("end a provider account's pause now").argument("<provider>", "the provider account (persona setting `provider`, or persona:<id>)");
  addDbOption(resume);
  addJsonOption(resume);
  resume.action(async (name: string, options: DbOptions & JsonOptions) => {
    const resumed = await withStore(configFrom(options), "existing", async (store) => {
      const now = systemClock.now();
      const done = await store.economics.resumeProvider({ provider: name, now, by: BY });
      if (!done) {
        const paused = (await store.economics.pauses({ now })).map((p) => p.provider);
        throw new RosterError("INVALID_STATE", `provider "${name}" is not paused (paused: ${paused.length === 0 ? "none" : paused.join(", ")})`, { details: { field: "provider" } });
      }
      return done;
    });
    if (options.json) printJson({ provider: name, resumed });
    else write(`provider ${name}: resumed`);
  });
}

function registerBreaker(program: Command): void {
  const breaker = program.command("breaker").description("list personas' circuit breakers, or reset one now");

  const ls = breaker.command("ls").description("list circuit breakers that are open, probing, or counting failures");
  addDbOption(ls);
  addJsonOption(ls);
  ls.action(async (options: DbOptions & JsonOptions) => {
    const breakers = await withStore(configFrom(options), "existing", (store) => store.economics.breakers());
    if (options.json) {
      printJson(breakers);
      return;
    }
    if (breakers.length === 0) {
      write("no breaker is open or counting");
      return;
    }
    write(
      table(
        ["PERSONA", "STATE", "FAILURES", "OPENS", "OPEN UNTIL", "PROBE"],
        breakers.map((b) => [b.persona, b.state, b.consecutiveFailures, b.opens, b.openUntil === null ? "-" : localTime(b.openUntil), b.probeTaskId ?? "-"]),
      ).trimEnd(),
    );
  });

  const reset = breaker.command("reset").description("close a persona's circuit breaker now").argument("<persona>", "persona id");
  addDbOption(reset);
  addJsonOption(reset);
  reset.action(async (persona: string, options: DbOptions & JsonOptions) => {
    await withStore(configFrom(options), "existing", async (store) => {
      if ((await store.personas.get({ id: persona })) === null) {
        throw new RosterError("PERSONA_NOT_FOUND", `persona: unknown persona "${persona}"`, { details: { field: "persona" } });
      }
      if (!(await store.economics.resetBreaker({ persona, now: systemClock.now(), by: BY }))) {
        throw new RosterError("INVALID_STATE", `persona "${persona}": its breaker is closed with no failures counted; nothing to reset`, { details: { field: "persona" } });
      }
    });
    if (options.json) printJson({ persona, reset: true });
    else write(`breaker of ${persona}: closed`);
  });
}
