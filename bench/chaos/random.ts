/**
 * A seeded PRNG (mulberry32): the chaos run's whole schedule (task mix, kill
 * moments) comes from one 32-bit seed, so `--seed S` replays a run.
 */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer from min to max, both included. */
export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** A fresh seed when none is given: any 32-bit unsigned integer. */
export function newSeed(): number {
  return Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
}
