import type { WarmUpRequest, WarmUpResponse } from "./protocol.js";

/** WorkerPool.ready()'s wait: `done` resolves when every thread answered or the wait ran out; `end` ends it early (close). */
export interface Warming {
  done: Promise<void>;
  end: () => void;
}

/**
 * Sends one WarmUpRequest per thread (piscina's balancer gives a message to an idle thread
 * first, so each thread gets one) and reports each thread that answers: up, its personas'
 * adapters loaded. Never rejects: a thread that does not answer is left to piscina, and the
 * wait ends after `waitMs` at the latest.
 */
export function warmUp(run: (request: WarmUpRequest) => Promise<WarmUpResponse>, threads: number, waitMs: number, onReady: (threadId: number) => void): Warming {
  let end!: () => void;
  const done = new Promise<void>((resolve) => (end = resolve));
  const timer = setTimeout(end, waitMs);
  timer.unref();
  const answers = Array.from({ length: threads }, () =>
    run({ warmUp: true }).then(
      (response) => onReady(response.threadId),
      () => undefined,
    ),
  );
  void Promise.all(answers).then(() => {
    clearTimeout(timer);
    end();
  });
  return { done, end };
}
