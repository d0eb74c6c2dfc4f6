/**
 * The supervisor runs adapters on worker threads, which load the built JS: tests that start one take it from dist/
 * (npm test builds first), typed as its source so tsc -p tsconfig.test.json checks how they use it.
 * The specifier is a computed URL, so tsc does not look for declarations of the built file (it has none).
 */
type SupervisorModule = typeof import("../../src/supervisor/supervisor.js");

const built = new URL("../../dist/src/supervisor/supervisor.js", import.meta.url).href;

export const { Supervisor } = (await import(built)) as SupervisorModule;
export type Supervisor = InstanceType<typeof Supervisor>;
