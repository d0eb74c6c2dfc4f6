/**
 * "Hosts" on one machine for the PostgreSQL benchmark (issue 19): network namespaces,
 * each joined to the root namespace by a veth pair of its own (a /30: the root end is
 * an address the database server listens on, the namespace end the host's address).
 * A child process runs on such a host through `ip netns exec` (support/child.ts), so
 * its connections to the server cross a veth link and the kernel's network stack
 * instead of staying on the loopback device. Needs root and iproute2.
 */
import { execFileSync } from "node:child_process";
import { IP_COMMAND } from "./child.js";

export interface Host {
  /** Network namespace name, for runInChild's `netns`. */
  netns: string;
  /** The root namespace's end of the link: the server listens here, the host connects here. */
  serverAddress: string;
  /** The host's own address. */
  address: string;
}

export interface Hosts {
  hosts: Host[];
  /** Deletes the namespaces (and with them the veth pairs). */
  remove(): void;
}

function ip(args: string[]): string {
  return execFileSync(IP_COMMAND, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** A 10.x.y.0/24 no address of this machine's root namespace is in (other tests make namespaces too). */
function freeSubnet(): string {
  const used = ip(["-o", "-4", "addr", "show"]);
  for (let k = 0; k < 64; k++) {
    const n = (process.pid + k * 7919) % 60000;
    const prefix = `10.${200 + (n % 50)}.${Math.floor(n / 50) % 250}.`;
    if (!used.includes(` ${prefix}`)) return prefix;
  }
  throw new Error("no free 10.x.y.0/24 subnet for the benchmark's veth links");
}

/** Creates `count` hosts; throws (having removed what it made) if the machine does not allow it. */
export function createHosts(count: number): Hosts {
  const tag = `rb${process.pid % 100000}`;
  const prefix = freeSubnet();
  const made: string[] = [];
  const remove = () => {
    for (const ns of made.splice(0)) {
      try {
        ip(["netns", "del", ns]);
      } catch {
        // Already gone: nothing left to remove.
      }
    }
  };
  try {
    const hosts: Host[] = [];
    for (let i = 0; i < count; i++) {
      const netns = `${tag}h${i}`;
      const outside = `${tag}v${i}`;
      const inside = `${tag}p${i}`;
      const serverAddress = `${prefix}${4 * i + 1}`;
      const address = `${prefix}${4 * i + 2}`;
      ip(["netns", "add", netns]);
      made.push(netns);
      ip(["link", "add", outside, "type", "veth", "peer", "name", inside]);
      ip(["link", "set", inside, "netns", netns]);
      ip(["addr", "add", `${serverAddress}/30`, "dev", outside]);
      ip(["link", "set", outside, "up"]);
      ip(["-n", netns, "addr", "add", `${address}/30`, "dev", inside]);
      ip(["-n", netns, "link", "set", inside, "up"]);
      ip(["-n", netns, "link", "set", "lo", "up"]);
      hosts.push({ netns, serverAddress, address });
    }
    process.once("exit", remove);
    return { hosts, remove };
  } catch (error) {
    remove();
    throw error;
  }
}
