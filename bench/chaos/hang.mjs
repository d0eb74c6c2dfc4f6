// The chaos suite's hung adapter (a `module` persona; the runner copies this file
// into the run's personas folder). It never returns and ignores its abort signal:
// payload.mode "spin" busy-loops, so its thread's event loop never turns again;
// "park" awaits a promise that never settles. Only the attempt's timeout, the
// abort grace and then the thread's termination end it: the task must fail
// TIMEOUT, and the tasks that shared its thread must not pay for it.
export async function run(task) {
  if (task.payload?.mode === "spin") {
    for (;;) {
      // Busy: nothing else runs on this thread.
    }
  }
  await new Promise(() => undefined);
}
