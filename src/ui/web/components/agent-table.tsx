// Agents with their kind, state, last heartbeat and held tasks (the overview and the Agents page).
import type { Dict } from "../client";
import { fmtAgo } from "../format";

export function AgentTable({ agents }: { agents: Dict[] }) {
  if (agents.length === 0) return <p class="muted">No agents.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">agent</th>
          <th scope="col">kind</th>
          <th scope="col">status</th>
          <th scope="col">heartbeat</th>
          <th scope="col">holds</th>
          <th scope="col">host / pid</th>
        </tr>
      </thead>
      <tbody>
        {agents.map((a) => (
          <tr>
            <td title={a.id}>{a.name}</td>
            <td>{a.kind}</td>
            <td>{a.status}</td>
            <td>{fmtAgo(a.lastHeartbeatAt)}</td>
            <td>{a.heldTasks}</td>
            <td class="muted">
              {a.hostname ?? ""} {a.pid ?? ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
