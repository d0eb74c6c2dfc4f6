import type { TypedEventBus } from "../../src/events.js";
import type { StoreEventBus, StoreEventMap, StoreEventName } from "../../src/store/index.js";

/**
 * Resolves with the payload of the next `name` event on `bus` (the store's or the
 * supervisor's: both are TypedEventBus) that passes `predicate`; rejects after
 * `timeoutMs` (a safety net, not a sleep: tests wait for events) with `noneWithin`'s message.
 */
export function nextOn<M extends { [K in keyof M]: unknown }, K extends keyof M & string>(
  bus: TypedEventBus<M>,
  name: K,
  predicate: (payload: M[K]) => boolean,
  timeoutMs: number,
  noneWithin: string,
): Promise<M[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(noneWithin));
    }, timeoutMs);
    const off = bus.on(name, (payload) => {
      if (!predicate(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** The next store event `name` that passes `predicate` (nextOn), within `timeoutMs`. */
export function waitFor<K extends StoreEventName>(
  events: StoreEventBus,
  name: K,
  predicate: (payload: StoreEventMap[K]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<StoreEventMap[K]> {
  return nextOn(events, name, predicate, timeoutMs, `waitFor: no "${name}" event within ${timeoutMs} ms`);
}

/** Collects every payload of `name` until `stop()` is called. */
export function collect<K extends StoreEventName>(events: StoreEventBus, name: K): { items: Array<StoreEventMap[K]>; stop: () => void } {
  const items: Array<StoreEventMap[K]> = [];
  const stop = events.on(name, (payload) => items.push(payload));
  return { items, stop };
}
