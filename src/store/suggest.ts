/**
 * "Did you mean" for a name that is not known: the known names closest to it by
 * edit distance (Levenshtein), when close enough to be a likely typo.
 */
import { RosterError } from "../errors.js";
import type { Store } from "./types.js";

export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The closest known name within a third of the longer name's length (at least 1, at most 3), or null. */
export function closestName(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    const limit = Math.min(3, Math.max(1, Math.floor(Math.max(name.length, candidate.length) / 3)));
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** ` (did you mean "implementer"? known: implementer, planner)`: the hint appended to an unknown-persona message. */
export function unknownNameHint(name: string, known: readonly string[]): string {
  const guess = closestName(name, known);
  const list = known.length === 0 ? "none" : known.join(", ");
  return guess === null ? ` (known: ${list})` : ` (did you mean "${guess}"? known: ${list})`;
}

/**
 * Refuses a list filter naming a persona the database has never had (PERSONA_NOT_FOUND with the
 * closest name and the known ones), as an enqueue refuses it: a typo would otherwise list nothing,
 * which reads as "no tasks". A retired persona is known (its tasks are kept and listed), and so is
 * every persona a task names (tasks.persona_id references personas). `label` is the field as the
 * caller's user typed it (`--persona` for the CLI, `persona` for the dashboard's query).
 */
export async function assertPersonaKnown(store: Store, persona: string, label: string): Promise<void> {
  if ((await store.personas.get({ id: persona })) !== null) return;
  const known = (await store.personas.list({ includeRetired: true })).map((p) => p.id);
  throw new RosterError("PERSONA_NOT_FOUND", `${label}: unknown persona "${persona}"${unknownNameHint(persona, known)}`, {
    details: { field: "persona", persona, known },
  });
}
