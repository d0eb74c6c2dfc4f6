// The views' hooks: a view's data loaded and reloaded on change notices, progress applied
// without a refetch, the hash route, and the live connection's state.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { Dict } from "./client";
import { listeners, liveState, liveStateListeners, type Listener, type LiveState } from "./live";

/** Loads `fetcher()` now and again after each change notice (at most every 400 ms while changes come). */
export function useLive<T>(fetcher: () => Promise<T>, deps: unknown[], relevant?: (c: Dict) => boolean, throttleMs = 400): { data: T | null; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const timer = useRef<number | null>(null);
  const inFlight = useRef(false);
  const again = useRef(false);
  const load = useCallback(() => {
    if (inFlight.current) {
      again.current = true;
      return;
    }
    inFlight.current = true;
    fetcher()
      .then((d) => {
        setData(d);
        setError(null);
      })
      .catch((e: Error) => setError(e.message))
      .finally(() => {
        inFlight.current = false;
        if (again.current) {
          again.current = false;
          load();
        }
      });
  }, deps);
  useEffect(() => {
    setData(null);
    load();
    const onChange: Listener = (c) => {
      if (relevant !== undefined && !relevant(c)) return;
      if (timer.current !== null) return;
      timer.current = window.setTimeout(() => {
        timer.current = null;
        load();
      }, throttleMs);
    };
    listeners.add(onChange);
    return () => {
      listeners.delete(onChange);
      if (timer.current !== null) clearTimeout(timer.current);
      timer.current = null;
    };
  }, [load]);
  return { data, error, reload: load };
}

/** Progress notices applied to running rows without a refetch. */
export function useProgress(): Map<number, { fraction: number; message: string | null }> {
  const [map, setMap] = useState(new Map<number, { fraction: number; message: string | null }>());
  useEffect(() => {
    const l: Listener = (c) => {
      if (!Array.isArray(c.progress) || c.progress.length === 0) return;
      setMap((old) => {
        const next = new Map(old);
        for (const p of c.progress) next.set(p.id, { fraction: p.fraction, message: p.message });
        return next;
      });
    };
    listeners.add(l);
    return () => listeners.delete(l);
  }, []);
  return map;
}

export function useRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, "") || "overview").split("/");
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

/**
 * The live connection's state, re-rendering on each change. The state is read again once
 * subscribed: the EventSource's first message can land between the render and the
 * effect (effects run after paint, late on a busy machine), and that change would
 * otherwise leave the header saying "connecting" for good.
 */
export function useLiveState(): LiveState {
  const [state, setState] = useState<LiveState>(liveState);
  useEffect(() => {
    const l = () => setState(liveState);
    liveStateListeners.add(l);
    l();
    return () => liveStateListeners.delete(l);
  }, []);
  return state;
}
