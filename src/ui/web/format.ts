// Formatting shared by the views: task states in their display order, times, money.
export const STATES = ["waiting", "pending", "claimed", "in_progress", "completed", "failed", "cancelled", "blocked", "awaiting_approval", "awaiting_input"];

export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false });
}
export function fmtAgo(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined) return "—";
  const s = Math.round((now - ms) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
export function fmtUsd(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : `$${n.toFixed(n < 1 ? 4 : 2)}`;
}
