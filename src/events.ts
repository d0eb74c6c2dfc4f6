import { EventEmitter } from "node:events";

/**
 * A typed `noun:verb` event bus: the one implementation behind the store's events
 * (after each commit) and the supervisor's. Emitting with no listener costs a map
 * lookup; many subscribers (metrics, logs, services, tests) are normal.
 */
export class TypedEventBus<M extends { [K in keyof M]: unknown }> {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  on<K extends keyof M & string>(name: K, listener: (payload: M[K]) => void): () => void {
    this.emitter.on(name, listener as (payload: unknown) => void);
    return () => this.emitter.off(name, listener as (payload: unknown) => void);
  }

  once<K extends keyof M & string>(name: K, listener: (payload: M[K]) => void): () => void {
    this.emitter.once(name, listener as (payload: unknown) => void);
    return () => this.emitter.off(name, listener as (payload: unknown) => void);
  }

  emit<K extends keyof M & string>(name: K, payload: M[K]): void {
    if (this.emitter.listenerCount(name) > 0) this.emitter.emit(name, payload);
  }

  listenerCount(name: keyof M & string): number {
    return this.emitter.listenerCount(name);
  }
}
