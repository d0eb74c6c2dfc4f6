/** What people see: the status summary, `roster status`, and the live view of `roster start`. */
export { readStatus, renderStatus, statusJson, statusFields, summarize, bar, RUNNING_SHOWN_DEFAULT, type StatusSnapshot, type PersonaSummary, type RenderOptions } from "./summary.js";
export { LiveStatus, LIVE_INTERVAL_MS_DEFAULT, LINES_INTERVAL_MS_DEFAULT, type LiveStatusOptions, type TerminalLike } from "./live.js";
export { createStartConsole, type StartConsole, type StartConsoleOptions } from "./console.js";
