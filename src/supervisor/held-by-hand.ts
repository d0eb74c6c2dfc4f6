import type { BudgetRecord, Counts, Store } from "../store/index.js";

/**
 * Pending tasks that no clock will free (docs/ARCHITECTURE.md rule 15, docs/economics.md): only
 * a person, or a change from outside, lifts what holds them. A spent task or goal budget (held
 * until raised or removed), a spent persona or global budget without a window, and a provider
 * paused with no end (`providerAutoResume: false`). A delayed run_at, a retry's backoff, a pause
 * that ends by itself, a rate limit's window, a breaker's cooldown and a windowed budget all pass
 * by themselves, so their tasks are not counted here. Reads only.
 */
export interface HeldByHand {
  /** How many pending tasks are held so. */
  tasks: number;
  /** What holds them, each with the command that lifts it. */
  lifts: string[];
}

function raise(b: BudgetRecord, flag: string): string {
  const tokens = b.maxTokens !== null && b.spentTokens >= b.maxTokens;
  return `roster budget raise ${flag} ${tokens ? "--tokens N" : "--usd N"}`;
}

export async function heldByHand(store: Store, counts: Counts, now: number): Promise<HeldByHand> {
  const pending = new Map<string, number>();
  for (const [persona, states] of Object.entries(counts)) if ((states.pending ?? 0) > 0) pending.set(persona, states.pending!);
  const out: HeldByHand = { tasks: 0, lifts: [] };
  if (pending.size === 0) return out;
  const spent = (await store.economics.budgets({ now })).filter((b) => b.exhausted);
  // Whole personas first: every pending task of theirs is held.
  const whole = new Set<string>();
  const global = spent.find((b) => b.scope === "global" && b.window === "total");
  for (const persona of pending.keys()) {
    const own = spent.find((b) => b.scope === "persona" && b.key === persona && b.window === "total");
    const pause = (await store.economics.gates({ persona, now })).reasons.find((r) => r.code === "PROVIDER_PAUSED" && r.until === null);
    const lift =
      pause !== undefined && pause.code === "PROVIDER_PAUSED"
        ? `provider "${pause.provider}" is paused (${pause.reason}) until resumed: roster provider resume ${pause.provider}`
        : own !== undefined
          ? `persona "${persona}"'s budget is spent: ${raise(own, `--persona ${persona}`)}`
          : global !== undefined
            ? `the global budget is spent: ${raise(global, "--global")}`
            : null;
    if (lift === null) continue;
    whole.add(persona);
    out.tasks += pending.get(persona)!;
    if (!out.lifts.includes(lift)) out.lifts.push(lift);
  }
  const goals = new Set<number>();
  for (const b of spent.filter((x) => x.scope === "goal")) {
    const root = Number(b.key);
    goals.add(root);
    let n = 0;
    for (const [persona, states] of Object.entries(await store.tasks.counts({ rootId: root }))) if (!whole.has(persona)) n += states.pending ?? 0;
    if (n === 0) continue;
    out.tasks += n;
    out.lifts.push(`goal ${root}'s budget is spent (${n} task${n === 1 ? "" : "s"}): ${raise(b, `--goal ${root}`)}`);
  }
  for (const b of spent.filter((x) => x.scope === "task")) {
    const task = await store.tasks.get({ taskId: Number(b.key), eventLimit: 0 }).catch(() => null);
    if (task === null || task.status !== "pending" || whole.has(task.persona) || goals.has(task.rootId)) continue;
    out.tasks += 1;
    out.lifts.push(`task ${task.id}'s budget is spent: ${raise(b, `--task ${task.id}`)}`);
  }
  return out;
}
