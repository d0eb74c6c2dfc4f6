import type { Clock } from "../clock.js";
import type { Service } from "../service.js";
import type { Store } from "../store/index.js";
import { setLongTimeout, type LongTimeout } from "../timers.js";

/**
 * Wakes a persona's producer when an economic gate that stopped its claim opens
 * again (a provider pause ends, a breaker's cooldown is over, a rate window or a
 * budget window turns), so paused work resumes by itself (docs/economics.md).
 * The claim reports each refusal as `claim:gated` with the time its earliest timed
 * gate opens; one timer per persona, at the earliest such time. Gates without a
 * time (a pause until resumed by hand, a probe running) open on a write, which
 * wakes the producers the usual way (task:ready in this process, the external
 * change check for others).
 *
 * Modes: stopped → listening (subscribed, a timer per gated persona) → stopped.
 */
export class GateWaker implements Service {
  readonly name = "gateWaker";
  private readonly timers = new Map<string, { at: number; timer: LongTimeout }>();
  private off: (() => void) | null = null;

  constructor(private readonly host: { readonly store: Store; readonly clock: Clock; wake(personas: readonly string[]): void }) {}

  start(): void {
    if (this.off !== null) return;
    this.off = this.host.store.events.on("claim:gated", ({ persona, until }) => {
      if (until !== null) this.arm(persona, until);
    });
  }

  stop(): void {
    this.off?.();
    this.off = null;
    for (const { timer } of this.timers.values()) timer.clear();
    this.timers.clear();
  }

  private arm(persona: string, at: number): void {
    const armed = this.timers.get(persona);
    if (armed !== undefined && armed.at <= at) return;
    armed?.timer.clear();
    // A few ms past the gate's time, so the claim it wakes sees the gate open on the same clock.
    // A cooldown, a pause or a window may end past what one setTimeout holds: setLongTimeout.
    const timer = setLongTimeout(() => {
      this.timers.delete(persona);
      this.host.wake([persona]);
    }, Math.max(0, at - this.host.clock.now()) + 5);
    timer.unref();
    this.timers.set(persona, { at, timer });
  }
}
