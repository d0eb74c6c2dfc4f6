// Live change notices: one EventSource on api/events (src/ui/live.ts sends them); each
// view subscribes and refetches what a notice concerns (src/ui/web/hooks.ts).
import type { Dict } from "./client";

export type Listener = (change: Dict) => void;
export const listeners = new Set<Listener>();
export type LiveState = "connecting" | "live" | "offline";
/** The EventSource's state, shown in the header. */
export let liveState: LiveState = "connecting";
export const liveStateListeners = new Set<() => void>();
function setLive(s: LiveState): void {
  liveState = s;
  for (const l of liveStateListeners) l();
}
export function connectLive(): void {
  const source = new EventSource("api/events");
  source.addEventListener("hello", () => setLive("live"));
  source.addEventListener("change", (e) => {
    const change = JSON.parse((e as MessageEvent).data) as Dict;
    for (const l of listeners) l(change);
  });
  source.onerror = () => setLive("offline");
  source.onopen = () => setLive("live");
}

