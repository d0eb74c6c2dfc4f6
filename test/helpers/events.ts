import type { StoreEventBus, StoreEventMap, StoreEventName } from "../../src/store/index.js";

/**
 * Resolves with the payload of the next `name` event that passes `predicate`;
 * rejects after `timeoutMs` (a safety net, not a sleep: tests wait for events).
 */
export function waitFor<K extends StoreEventName>(
  events: StoreEventBus,
  name: K,
  predicate: (payload: StoreEventMap[K]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<StoreEventMap[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`waitFor: no "${name}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = events.on(name, (payload) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Collects every payload of `name` until `stop()` is called. */
export function collect<K extends StoreEventName>(events: StoreEventBus, name: K): { items: Array<StoreEventMap[K]>; stop: () => void } {
  const items: Array<StoreEventMap[K]> = [];
  const stop = events.on(name, (payload) => items.push(payload));
  return { items, stop };
}
